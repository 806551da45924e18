"""LoRA fine-tuning of local VLMs: config, data, the training engine (transformers Trainer + PEFT),
run folders, merge, LLaMA-Factory export. Runs start out of process through `sarlang-cli train`."""
