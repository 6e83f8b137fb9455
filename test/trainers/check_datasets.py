"""The exports load with the consumers' own loaders: `datasets.load_dataset` for hf and trl, and
LLaMA-Factory's sharegpt rules for sharegpt and llamafactory. Row counts match the export summary."""
import json
import os
from collections import Counter

from common import Checks, arguments_of, canonical_turn, export_path, exported, jsonl_files, parse_tools, read_jsonl, trainable_turns

checks = Checks("datasets")
LONG_TASK = "Append fourteen numbered lines"


def openai_rows():
    return read_jsonl(export_path("openai.jsonl"))


def load(folder):
    from datasets import load_dataset

    return load_dataset(export_path(folder))


# openai -----------------------------------------------------------------------------------------


def openai_lines():
    rows = openai_rows()
    assert len(rows) == exported("openai")["records"], f"{len(rows)} lines, the summary says {exported('openai')['records']}"
    for number, row in enumerate(rows, 1):
        assert set(row) == {"messages", "tools"}, f"line {number} has keys {sorted(row)}"
        for message in row["messages"]:
            if message["role"] == "assistant":
                assert message.get("weight") in (0, 1), f"line {number}: assistant weight {message.get('weight')!r}"
                for call in message.get("tool_calls") or []:
                    assert isinstance(call["function"]["arguments"], str), f"line {number}: arguments are not a JSON string"
                    json.loads(call["function"]["arguments"])
    return f"{len(rows)} lines"


def openai_segments():
    rows = [row for row in openai_rows() if len(row["messages"]) > 1 and row["messages"][1]["content"].startswith(LONG_TASK)]
    assert len(rows) > 1, f"the summarized run is {len(rows)} line(s): one line per context segment expected"
    for row in rows:
        roles = [message["role"] for message in row["messages"][:2]]
        assert roles == ["system", "user"], f"a segment starts with {roles}"
    for row in rows[1:]:
        third = row["messages"][2]
        assert third["role"] == "user" and "State snapshot" in third["content"], f"a later segment's third message is not the summary: {third}"
    return f"{len(rows)} segments"


checks.check("openai: one line per record, weight 0|1, arguments JSON strings", openai_lines)
checks.check("openai: a summarized run is cut at each compaction", openai_segments)

# hf ---------------------------------------------------------------------------------------------


def hf_loads():
    dataset = load("hf")
    rows = dataset["train"].num_rows
    assert rows == exported("hf")["records"], f"{rows} rows loaded, the summary says {exported('hf')['records']}"
    return f"{rows} rows"


def hf_raw_rows():
    return [row for path in jsonl_files(export_path("hf")) for row in read_jsonl(path)]


def hf_content_strings():
    for row in hf_raw_rows():
        for message in row["messages"]:
            assert isinstance(message["content"], str), f"{row.get('id')}: a message of role {message['role']} has content {message['content']!r}"


def hf_argument_objects():
    calls = [call for row in hf_raw_rows() for message in row["messages"] for call in message.get("tool_calls") or []]
    assert calls, "no tool calls in the hf export"
    for call in calls:
        assert isinstance(call["function"]["arguments"], dict), f"arguments are {type(call['function']['arguments']).__name__}: {call['function']['arguments']!r:.80}"


def hf_assistant_keys():
    for row in hf_raw_rows():
        for message in row["messages"]:
            if message["role"] != "assistant":
                continue
            assert message.get("weight") in (0, 1), f"weight {message.get('weight')!r}"
            assert isinstance(message.get("training"), bool), f"training {message.get('training')!r}"
            assert message["training"] == (message["weight"] == 1), "training and weight disagree"
            assert "reasoning_content" in message, "no reasoning_content key"


def read_back_unchanged(folder, message_columns):
    """What a trainer reads after load_dataset is what the export wrote: a schema shared by all
    rows must not add other tools' argument or parameter keys as nulls."""
    exported(folder)
    raw = [row for path in jsonl_files(export_path(folder)) for row in read_jsonl(path)]
    loaded = [row for split in load(folder).values() for row in split]
    assert len(raw) == len(loaded), f"{len(raw)} rows written, {len(loaded)} loaded"
    calls = 0
    for before, after in zip(raw, loaded):
        assert parse_tools(before.get("tools")) == parse_tools(after.get("tools")), "the tools column changed after load_dataset (keys added as null?)"
        for column in message_columns:
            for m_before, m_after in zip(before[column], after[column]):
                for c_before, c_after in zip(m_before.get("tool_calls") or [], m_after.get("tool_calls") or []):
                    a_before, a_after = arguments_of(c_before), arguments_of(c_after)
                    assert a_before == a_after, f"{c_before['function']['name']}: {a_before} became {a_after} after load_dataset"
                    calls += 1
    return f"tools and {calls} tool calls"


def hf_loaded_arguments_unchanged():
    return read_back_unchanged("hf", ["messages"])


def hf_segments():
    rows = [row for row in hf_raw_rows() if row["messages"][1]["content"].startswith(LONG_TASK)]
    assert len(rows) > 1, f"the summarized run is {len(rows)} row(s): one row per context segment expected"
    return f"{len(rows)} segments"


checks.check("hf: load_dataset(folder) loads, rows match the summary", hf_loads)
checks.check("hf: content is always a string", hf_content_strings)
checks.check("hf: tool-call arguments are objects", hf_argument_objects)
checks.check("hf: assistant messages carry weight, training and reasoning_content", hf_assistant_keys)
checks.check("hf: tools and arguments read back by load_dataset equal the exported ones", hf_loaded_arguments_unchanged)
checks.check("hf: a summarized run is cut at each compaction", hf_segments)

# trl --------------------------------------------------------------------------------------------


def trl_loads():
    exported("trl")
    dataset = load("trl")
    rows = dataset["train"].num_rows
    assert rows == exported("trl")["records"], f"{rows} rows loaded, the summary says {exported('trl')['records']}"
    return f"{rows} rows"


def trl_rows_are_trainable_turns():
    exported("trl")
    rows = read_jsonl(export_path("trl", "data", "train.jsonl"))
    for row in rows:
        assert {"prompt", "completion", "tools"} <= set(row), f"a row has keys {sorted(row)}"
        assert len(row["completion"]) == 1 and row["completion"][0]["role"] == "assistant", f"completion is {[m['role'] for m in row['completion']]}"
        assert row["prompt"][0]["role"] == "system" and row["prompt"][-1]["role"] in ("user", "tool"), f"prompt runs {row['prompt'][0]['role']} … {row['prompt'][-1]['role']}"
    expected = Counter(canonical_turn(message) for message in trainable_turns(openai_rows()))
    got = Counter(canonical_turn(row["completion"][0]) for row in rows)
    assert got == expected, f"completions differ from the openai export's weight-1 turns: missing {list((expected - got).elements())[:3]}, extra {list((got - expected).elements())[:3]}"
    return f"{len(rows)} rows = weight-1 turns of the openai export"


checks.check("trl: load_dataset(folder) loads, rows match the summary", trl_loads)
checks.check("trl: one prompt-completion row per trainable turn", trl_rows_are_trainable_turns)
checks.check("trl: tools and arguments read back by load_dataset equal the exported ones", lambda: read_back_unchanged("trl", ["prompt", "completion"]))

# sharegpt and llamafactory: LLaMA-Factory's SharegptDatasetConverter rules ------------------------


def sharegpt_parity(rows, where):
    """After an optional leading system turn, even positions are human/observation and odd ones
    gpt/function_call, and the count is even: LLaMA-Factory drops a row that breaks this."""
    for number, row in enumerate(rows, 1):
        turns = row["conversations"]
        if turns and turns[0]["from"] == "system":
            turns = turns[1:]
        accept = (("human", "observation"), ("gpt", "function_call"))
        for index, turn in enumerate(turns):
            assert turn["from"] in accept[index % 2], f"{where} row {number}: turn {index} is {turn['from']}, expected one of {accept[index % 2]}"
            assert isinstance(turn["value"], str), f"{where} row {number}: turn {index} value is {type(turn['value']).__name__}"
        assert len(turns) % 2 == 0 and turns, f"{where} row {number}: {len(turns)} turns (LLaMA-Factory needs an even count)"
    return f"{len(rows)} rows"


def sharegpt_rows():
    rows = read_jsonl(export_path("sharegpt.jsonl"))
    assert len(rows) == exported("sharegpt")["records"]
    return sharegpt_parity(rows, "sharegpt")


def llamafactory_rows():
    exported("llamafactory")
    folder = export_path("llamafactory")
    with open(os.path.join(folder, "dataset_info.json"), encoding="utf8") as handle:
        info = json.load(handle)
    assert info, "dataset_info.json names no dataset"
    total = 0
    for name, entry in info.items():
        assert entry.get("formatting") == "sharegpt", f"{name}: formatting {entry.get('formatting')!r}"
        path = os.path.join(folder, entry["file_name"])
        assert os.path.isfile(path), f"{name}: {entry['file_name']} is not in the folder"
        messages = entry.get("columns", {}).get("messages", "conversations")
        rows = read_jsonl(path)
        assert all(messages in row for row in rows), f"{name}: rows lack the {messages} column"
        sharegpt_parity([{"conversations": row[messages]} for row in rows], name)
        total += len(rows)
    assert total == exported("llamafactory")["records"], f"{total} rows, the summary says {exported('llamafactory')['records']}"
    return f"{total} rows"


checks.check("sharegpt: LLaMA-Factory's turn order (system?, human|observation, gpt|function_call, …)", sharegpt_rows)
checks.check("llamafactory: dataset_info.json names the data; LLaMA-Factory's turn order", llamafactory_rows)

# pairs ------------------------------------------------------------------------------------------


def pairs_rows():
    rows = read_jsonl(export_path("pairs.jsonl"))
    assert len(rows) == exported("pairs")["records"] and rows, f"{len(rows)} pairs"
    for row in rows:
        assert row["prompt"] and row["chosen"] and row["rejected"], "an empty prompt, chosen or rejected"
        assert row["chosen"][0]["role"] == "assistant" and row["rejected"][0]["role"] == "assistant", "chosen/rejected do not start with the assistant"
    from datasets import load_dataset

    loaded = load_dataset("json", data_files=export_path("pairs.jsonl"))["train"]
    assert loaded.num_rows == len(rows)
    return f"{len(rows)} pairs"


checks.check("pairs: preference rows load with datasets' json loader", pairs_rows)

checks.finish()
