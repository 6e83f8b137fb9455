/**
 * The benchmark's model: the scripted test server with zero latency, in its own process so its
 * work and memory stay out of the engine's figures. Prints its base URL, serves until killed.
 * Agent requests get a tool call from a fixed rotation; summary requests (no tools) get a summary.
 */
import { type ScriptedReply, startScriptedModelServer } from '../test/fixtures/scriptedModelServer';

let turn = 0;

/** A mix like a real session's: mostly reading and editing, now and then a search or a command. */
function nextAction(): ScriptedReply {
  turn++;
  const thought = `Step ${turn}: checking the next part of the module before changing it.`;
  if (turn % 10 === 0) return { content: thought, toolCall: { name: 'run_command', arguments: { command: 'echo ok' } } };
  if (turn % 10 === 5) return { content: thought, toolCall: { name: 'search', arguments: { pattern: 'def convert' } } };
  switch (turn % 3) {
    case 0:
      return { content: thought, toolCall: { name: 'read_file', arguments: { path: 'src/module.py', start_line: 1, end_line: 40 } } };
    case 1:
      return { content: thought, toolCall: { name: 'write_file', arguments: { path: `work/note-${turn % 50}.txt`, content: `note ${turn}\n`.repeat(20) } } };
    default:
      return { content: thought, toolCall: { name: 'list_dir', arguments: { path: 'src' } } };
  }
}

async function main(): Promise<void> {
  const server = await startScriptedModelServer([], {
    keepRequests: false,
    fallback: (request) =>
      request.body.tools ? nextAction() : { content: '## Task state\nWorking through the module.\n## Key knowledge\nconvert() lives in src/module.py.\n## Recent actions\nread, wrote notes.' },
  });
  process.stdout.write(`${server.baseUrl}\n`);
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
});
