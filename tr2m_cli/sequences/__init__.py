"""Clips — videos, robot recordings, folders of numbered frames — in; temporally stable metric
depth out.

Modules: `frames` (a clip's frames and which of them a run converts), `video` (video files, via
PyAV), `rosbag` (ROS 1/2 image topics and their CameraInfo, via rosbags), `folders` (numbered
frames), `sources` (opening any of them the same way), `scenes` (scene cuts), `stabilize`
(smoothing scale and shift maps over time), `preview_video` (the clip's colourised depth video),
`testing` (clips and bags written on the spot for tests and benchmarks).

Video needs the `video` extra (`pip install 'tr2m[video]'`), bags the `ros` extra.
"""
