"""Every hf row renders with transformers' apply_chat_template, for Qwen3's template (the npm
package's tokenizer_config.json) and a Llama-3.1-style one (TRL's llama3_1.jinja, on the npm
package's Llama 3.1 tokenizer: that package's own template is Llama 3's and knows no tools).
Tool-call arguments arrive as JSON objects, not JSON strings inside JSON; reasoning appears in
Qwen3's <think> exactly where its template puts it."""
import json
import re

from common import Checks, arguments_of, export_path, load_tokenizer, parse_tools, trl_template, without_nulls

checks = Checks("templates")
state = {}


def rows():
    if "rows" not in state:
        from datasets import load_dataset

        loaded = load_dataset(export_path("hf"))
        state["rows"] = [row for split in loaded.values() for row in split]
    return state["rows"]


def render(tokenizer, row, messages=None):
    return tokenizer.apply_chat_template(messages if messages is not None else row["messages"], tools=parse_tools(row["tools"]), tokenize=False)


def json_at(text, start):
    """The JSON value that starts at text[start]."""
    return json.JSONDecoder().raw_decode(text, start)[0]


# Qwen3 ------------------------------------------------------------------------------------------


def qwen3():
    if "qwen3" not in state:
        state["qwen3"] = load_tokenizer("tokenizer-qwen3")
    return state["qwen3"]


def with_string_content(row):
    return [{**message, "content": message["content"] if isinstance(message["content"], str) else ""} for message in row["messages"]]


def qwen3_renders():
    try:
        state["qwen3_text"] = [render(qwen3(), row) for row in rows()]
    except TypeError as error:
        if any(message["content"] is None for row in rows() for message in row["messages"]):
            raise AssertionError(f"{error}: a message has content null, and Qwen3's template tests '</think>' in message.content") from error
        raise
    finally:
        if "qwen3_text" not in state:
            # The further checks still run, on content made a string: they test other things.
            state["qwen3_text"] = [render(qwen3(), row, with_string_content(row)) for row in rows()]
    return f"{len(rows())} rows"


def qwen3_calls_not_double_encoded():
    count = 0
    for row, text in zip(rows(), state["qwen3_text"]):
        expected = [without_nulls(arguments_of(call)) for message in row["messages"] for call in message.get("tool_calls") or []]
        # After the system turn, whose tool instructions show a <tool_call> with placeholders.
        turns = text.split("<|im_end|>", 1)[1]
        found = [json.loads(block) for block in re.findall(r"<tool_call>\n(.*?)\n</tool_call>", turns, re.S)]
        assert len(found) == len(expected), f"{len(found)} rendered tool calls, {len(expected)} in the row"
        for call, arguments in zip(found, expected):
            assert isinstance(call["arguments"], dict), f"{call['name']}: arguments rendered as a JSON string {call['arguments']!r:.80}"
            assert without_nulls(call["arguments"]) == arguments, f"{call['name']}: rendered {call['arguments']}, the row holds {arguments}"
            count += 1
    return f"{count} calls"


def last_query_index(messages):
    """Qwen3's template: the last user message that is not a tool response."""
    index = len(messages) - 1
    for position in range(len(messages) - 1, -1, -1):
        message = messages[position]
        if message["role"] == "user" and not (message["content"] or "").startswith("<tool_response>"):
            return position
    return index


def qwen3_reasoning():
    shown = hidden = 0
    for row, text in zip(rows(), state["qwen3_text"]):
        messages = row["messages"]
        last_query = last_query_index(messages)
        for position, message in enumerate(messages):
            reasoning = (message.get("reasoning_content") or "").strip()
            if message["role"] != "assistant" or not reasoning:
                continue
            if position > last_query:
                assert f"<think>\n{reasoning}\n</think>" in text, f"{row.get('id')}: reasoning of message {position} (after the last user message) is not in <think>"
                shown += 1
            else:
                assert reasoning not in text, f"{row.get('id')}: reasoning of message {position} (before the last user message) is rendered; Qwen3 drops it"
                hidden += 1
    assert shown, "no reasoning rendered in <think>: the export carries no reasoning_content after the last user message"
    return f"{shown} in <think>, {hidden} dropped before the last user message"


checks.check("Qwen3: every hf row renders with apply_chat_template(messages, tools=tools)", qwen3_renders)
if "qwen3_text" in state:
    checks.check("Qwen3: tool-call arguments render as objects equal to the exported ones", qwen3_calls_not_double_encoded)
    checks.check("Qwen3: reasoning in <think> after the last user message only", qwen3_reasoning)

# Llama 3.1 --------------------------------------------------------------------------------------


def llama():
    if "llama" not in state:
        state["llama"] = load_tokenizer("tokenizer-llama3_1", chat_template=trl_template("llama3_1"))
    return state["llama"]


def llama_messages(row):
    """Llama 3.1's template tests for the tool_calls key, so the keys a uniform datasets schema
    fills with null or [] on every message are left out first (as trainers' preprocessing does)."""
    return [{key: value for key, value in message.items() if value is not None and value != []} for message in row["messages"]]


def llama_renders():
    state["llama_text"] = [render(llama(), row, llama_messages(row)) for row in rows()]
    return f"{len(rows())} rows"


def llama_calls_not_double_encoded():
    count = 0
    header = "<|start_header_id|>assistant<|end_header_id|>\n\n"
    for row, text in zip(rows(), state["llama_text"]):
        expected = [without_nulls(arguments_of(call)) for message in row["messages"] for call in message.get("tool_calls") or []]
        starts = [match.end() for match in re.finditer(re.escape(header) + r'(?=\{"name")', text)]
        found = [json_at(text, start) for start in starts]
        assert len(found) == len(expected), f"{len(found)} rendered tool calls, {len(expected)} in the row"
        for call, arguments in zip(found, expected):
            assert isinstance(call["parameters"], dict), f"{call['name']}: parameters rendered as a JSON string {call['parameters']!r:.80}"
            assert without_nulls(call["parameters"]) == arguments, f"{call['name']}: rendered {call['parameters']}, the row holds {arguments}"
            count += 1
    return f"{count} calls"


checks.check("Llama 3.1: every hf row renders with apply_chat_template(messages, tools=tools)", llama_renders)
if "llama_text" in state:
    checks.check("Llama 3.1: tool-call parameters render as objects, not JSON strings", llama_calls_not_double_encoded)

checks.finish()
