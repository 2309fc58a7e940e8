import { runCli } from '../../src/cli/main';
import { memoryIo } from '../../src/cli/io';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The --json document, if the command printed one. */
  json: any;
}

/** The real yargs root in this process, output captured (the environment is the caller's). */
export async function inProcessCli(...args: string[]): Promise<CliRun> {
  const ios: Array<ReturnType<typeof memoryIo>> = [];
  const code = await runCli(args, (json) => {
    const io = memoryIo(json);
    ios.push(io);
    return io;
  });
  const io = ios[ios.length - 1];
  return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n'), json: io.documents[0] as any };
}
