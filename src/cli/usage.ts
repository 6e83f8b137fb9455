/** The text `apollo --help` prints. */
export const USAGE = `apollo — run, steer and record coding agents

Usage:
  apollo run --workspace DIR --task TEXT [--model ID] [--base-url URL] [--dataset DIR] [--max-steps N] [--context-budget TOKENS]
             [--max-minutes M] [--max-tokens T] [--exclude PATTERN]... [--max-file-size-mb N]
             [--judge [--judge-model ID] [--judge-base-url URL]]
             [--sandbox auto|off] [--no-network] [--allow-command PATTERN]... [--show-secrets-to-model]
             [--temperature T] [--top-p P] [--seed S] [--max-output-tokens N] [--request-extra JSON|@FILE]
             [--keep-reasoning auto|always|never] [--verbose]
  apollo run --resume ID [--dataset DIR] [--workspace DIR] [--judge …] [--temperature T …]
                                                               continue an interrupted run from its last step
  apollo run --task-dir DIR [--workspace DIR] [--no-hints] [and the other options of apollo run]
                                                               a task in Harbor's layout (instruction.md, task.toml,
                                                               tests/test.sh); its verifier's reward is recorded
  apollo sample --task-dir DIR... --n K [--concurrency C] [--shard I/N] [--no-hints] [--plain-copies] [and the options below]
                                                               K runs of each task of a suite, each verified
  apollo verify --run ID [--dataset DIR]                       run a task run's verifier again on its workspace
  apollo verify --task-dir DIR --oracle                        check a task with its solution/solve.sh
  apollo import --format atif SRC... [--dataset DIR]           bring ATIF trajectories (e.g. from Harbor) in to label them
  apollo sample --workspace DIR --task TEXT --n N [--concurrency K] [--runs-dir DIR] [--dataset DIR] [--plain-copies]
             [--max-steps N] [--max-minutes M] [--max-tokens T] [--seed S [--same-seed]]
             [and the other options of apollo run]
                                                               N runs of one task, each in its own working copy;
                                                               prints each run's id as it starts
  apollo hint --run ID [--dataset DIR] [--kind knowledge|strategy|correction] [--now] TEXT
  apollo stats [--dataset DIR] [--json] [--policy not-bad|good-only|all] [--by hints [--success-threshold R]]
  apollo export --format openai|hf|trl|llamafactory|atif|sharegpt|pairs --out PATH [--dataset DIR] [--branches main|all]
                [--policy not-bad|good-only|all] [--min-quality 0..1] [--min-reward R] [--run ID]... [--hints user|omit]
                [--whole-trajectories] [--allow-empty]
                                                               one row per context the model saw (cut at each
                                                               compaction; --whole-trajectories: one per trajectory);
                                                               exits 1 when nothing comes out unless --allow-empty
  apollo validate [--dataset DIR]                              check every run; exit 1 if any error
  apollo relabel [--dataset DIR] [--run ID]...                 re-run the quality rules over finished runs
  apollo merge SRC... --into DIR                               bring the runs of other dataset folders into one (idempotent)
  apollo rewind --run ID --to-step N [--dataset DIR] [--force]  workspace back to before step N; resume goes on from there
  apollo adopt --run ID [--dataset DIR] [--force] [--dry-run]  apply a sampled run's changes to the workspace it was sampled from
               (--dry-run: only list them; --force: overwrite your own changes to the files the run changed)
  apollo gc [--dataset DIR] [--working-copies]                 reclaim the snapshot space of deleted runs
                                                               (--working-copies: also remove the working copies
                                                               of samplings whose runs have all ended)
  apollo label --run ID --step N --label good|bad|neutral [--dataset DIR] [--axis decision|execution] [--reason TEXT]

The model endpoint also comes from OPENAI_BASE_URL, OPENAI_API_KEY and OPENAI_MODEL.
Commands run in a bubblewrap sandbox where it works (--sandbox off turns it off; --no-network cuts
the network inside it). Without one, commands the policy flags (sudo, writes outside the workspace,
git push, curl | sh, …) are refused unless an --allow-command pattern (a command prefix, /regex/ or
rule:<id>) allows them. Secrets (the API key, secret-looking variables' values, known token shapes)
never reach the dataset; the model does not see them either unless --show-secrets-to-model.
--judge scores every step (decision and execution) with an LLM judge in the background; it uses the
run's endpoint and model unless --judge-base-url / --judge-model (or APOLLO_JUDGE_BASE_URL,
APOLLO_JUDGE_MODEL, APOLLO_JUDGE_API_KEY) name another.
Datasets live outside the workspace, where the agent's commands cannot reach them: --dataset defaults to
$APOLLO_HOME/datasets/<workspace>-<hash> (APOLLO_HOME defaults to ~/.apollo), one per workspace. run and
sample use the --workspace's; a command given --run or --resume ID finds the run in any of them; the others
use the dataset of the workspace they are run in (the current folder or one above it). Runs recorded by
earlier versions in <workspace>/.apollo/dataset stay there: apollo merge <workspace>/.apollo/dataset --into DIR.
Sampling (sent with every model request, recorded in the run): --temperature (0 to 2), --top-p (above 0,
at most 1), --seed (a whole number), --max-output-tokens (the reply's limit), --request-extra (a JSON
object of server-specific fields merged into each request, e.g. '{"chat_template_kwargs":
{"enable_thinking":false}}', or @file.json). With --resume they replace the recorded values one by
one. apollo sample gives its runs seeds S, S+1, … S+N-1 unless --same-seed. --keep-reasoning: whether
earlier turns' reasoning goes back to the model (auto: when the model is known to want it).
--verbose prints each step's reasoning and every further action of a step.
Budgets: a run stops after the step in flight once it has been going --max-minutes (paused time not
counted) or used --max-tokens (prompt plus completion); it ends with status budget. --max-steps
(default 50) ends it with status max_steps.
apollo sample snapshots the workspace once (uncommitted changes included; .gitignored files,
dependency folders and files over the size limit left out) and makes N working copies of it in
--runs-dir/<task id>/ (default $APOLLO_HOME/runs), each with its own .git when the workspace is a git
repository. On Linux the copies are overlay mounts over one base copy, made in a mount namespace of
the CLI's own (after the command, <task id>/<n> is empty and the run's changes are in
<task id>/.overlay/<n>/upper; verify --run and run --resume mount it again); --plain-copies makes
plain copies. The workspace itself is not touched. Runs go on --concurrency at a time (default all);
they share a task id in the dataset. Steps and errors go to stderr; hint one run with apollo hint.
Masks: --policy not-bad (default) trains on every step not labelled bad, good-only only on steps
labelled good, all on everything. A step's label is its latest human label, else the judge's, else
the rules'. --min-quality leaves out trajectories whose share of steps not labelled bad is lower.
Snapshots follow .gitignore and leave out dependency folders and caches (node_modules/, .venv/,
__pycache__/, target/, …) and files over 10 MB; each --exclude adds a gitignore-style pattern, and
--exclude '!target/' takes a default back.
`;
