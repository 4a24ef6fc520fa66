"""`python -m project.pretrain`: continued masked-language-model pretraining on raw text; `--help` lists every
option. Ends by saving a Hugging Face folder that `python -m project.fit --model.encoder <folder>` fine-tunes."""

from project.pretraining.cli import main

if __name__ == "__main__":
    main()
