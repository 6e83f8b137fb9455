/**
 * The environment for Apollo's own git calls. Git variables from the parent process would point
 * git at the user's repository, and variables that make git run programs (EDITOR, PAGER, …) are
 * refused by simple-git's safety checks; neither belongs in a snapshot.
 */
const DROPPED = new Set(['editor', 'visual', 'pager', 'prefix', 'ssh_askpass']);

export function gitEnvironment(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (value === undefined || lower.startsWith('git_') || DROPPED.has(lower)) continue;
    env[key] = value;
  }
  return { ...env, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0', ...extra };
}
