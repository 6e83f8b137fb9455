/** What a command is given to talk to the world: its output streams, environment and folder. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Called with a stop function while a run goes on, so Ctrl+C can end it cleanly. */
  onInterrupt?: (stop: () => void) => () => void;
}
