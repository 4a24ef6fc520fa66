"""Continued masked-language-model pretraining on raw text (`python -m project.pretrain`)."""
