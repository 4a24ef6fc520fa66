"""`python -m project.fit`: fine-tune, validate each epoch, test the best checkpoint. `--help` lists every option."""

from project.cli import main

if __name__ == "__main__":
    main()
