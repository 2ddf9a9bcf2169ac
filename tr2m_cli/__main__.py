"""`python -m tr2m_cli …` is `tr2m …` (torchrun launches modules this way)."""

from .cli import main

if __name__ == "__main__":
    main()
