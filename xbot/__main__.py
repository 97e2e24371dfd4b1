"""`python -m xbot …` is the `xbot` command."""

from xbot.cli import main

if __name__ == "__main__":
    main()
