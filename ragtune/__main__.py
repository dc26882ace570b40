"""`python -m ragtune ...` is the `ragtune` command (what `accelerate launch -m ragtune` runs)."""

from ragtune.cli import main

if __name__ == "__main__":
    main()
