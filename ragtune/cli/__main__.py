"""`python -m ragtune.cli ...` is the `ragtune` command (what `accelerate launch -m ragtune.cli`
runs in each process). It lives here, not in `ragtune/__main__.py`, so that nothing outside
`ragtune/cli` imports the CLI."""

from ragtune.cli import main

if __name__ == "__main__":
    main()
