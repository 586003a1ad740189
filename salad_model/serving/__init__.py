"""The model worker process and its wire protocol; never imports training or evaluation code."""
