"""How each kind of image-to-text model is asked for a caption.

Three styles cover the models transformers ships:

- `chat`: an instruction wrapped in the processor's chat template with the image before it
  (LLaVA, LLaVA-NeXT, SmolVLM, Idefics, Qwen-VL, …); the answer follows the prompt.
- `text`: a prompt handed to the processor as it is: a Florence-2 task token (`<CAPTION>`), a
  BLIP prefix that the caption continues ("a photography of"), PaliGemma's "caption en".
- `none`: the image alone (BLIP, GIT): the model was trained to caption.

The instruction for chat models asks for what TR2M was trained on: one sentence naming the scene
and its main objects, as the paper's LLaVA v1.6 captions do ("A computer lab with multiple desks
and chairs.").
"""

from __future__ import annotations

from dataclasses import dataclass

PROMPT_STYLES = ("chat", "text", "none")

# No example sentence in it: small chat models tend to copy one whatever the photo shows.
CAPTION_INSTRUCTION = "Describe this image in one sentence that names the scene and its main objects."

# model_type (config.json) → (style, prompt). Types not listed use `chat` when the processor has a
# chat template, else `none`.
MODEL_TYPE_PROMPTS: dict[str, tuple[str, str]] = {
    "blip": ("none", ""),
    "git": ("none", ""),
    "vision-encoder-decoder": ("none", ""),
    "florence2": ("text", "<CAPTION>"),
    "paligemma": ("text", "caption en"),
}


@dataclass(frozen=True)
class PromptPlan:
    style: str
    prompt: str


def plan_prompt(model_type: str, has_chat_template: bool, style: str | None = None, prompt: str | None = None) -> PromptPlan:
    """The style and prompt for a model: what the user or the registry set, else what the model's
    type needs, else a chat instruction for models that have a chat template."""
    known = MODEL_TYPE_PROMPTS.get(model_type)
    if style is None:
        style = known[0] if known else ("chat" if has_chat_template else "none")
    if prompt is None:
        if style == "chat":
            prompt = CAPTION_INSTRUCTION
        elif known and known[0] == style:
            prompt = known[1]
        else:
            prompt = ""
    return PromptPlan(style=style, prompt=prompt if style != "none" else "")


def chat_text(processor, instruction: str) -> str:
    """The instruction, after an image, in the processor's chat template, ready for the answer."""
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]}]
    return processor.apply_chat_template(conversation, add_generation_prompt=True)
