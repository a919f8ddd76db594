/** `liveportrait serve`: the web page, networks running in the browser. */
import type { Argv } from 'yargs';
import { CliError } from '../node/app/errors.js';
import { DEFAULT_HOST, DEFAULT_PORT, ensureWebBuilt, serve } from '../node/serve.js';

export const serveCommand = {
  command: 'serve',
  describe: 'Serve the web page (animate, image and video editing in the browser)',
  builder: (y: Argv) =>
    y
      .usage(
        [
          'liveportrait serve [--port 8890] [--host 127.0.0.1]',
          '',
          'Serve the LivePortrait page: the networks run in the browser (WebGPU, or WebAssembly with',
          'threads thanks to the cross-origin isolation headers sent here). Only the page\'s files are',
          'served. Open the printed address; Ctrl-C stops.',
        ].join('\n'),
      )
      .option('port', { type: 'number', default: DEFAULT_PORT, describe: 'Port to listen on (0: any free port).' })
      .option('host', { type: 'string', default: DEFAULT_HOST, describe: 'Address to listen on (default 127.0.0.1: this machine only; any other address, e.g. 0.0.0.0, exposes the page and prints a warning).' })
      .option('rebuild', { type: 'boolean', default: false, describe: 'Build the page again first (needs the repository\'s scripts and esbuild).' }),
  handler: async (a: Record<string, unknown>) => {
    const port = a.port as number;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be 0..65535, got ${port}`);
    const log = (line: string) => process.stderr.write(`${line}\n`);
    let s;
    try {
      if (a.rebuild) await ensureWebBuilt(log, true);
      s = await serve({ port, host: a.host as string, log });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new CliError(`port ${port} on ${a.host} is in use; pick another with --port`);
      throw new CliError(`could not serve the page: ${(e as Error).message}`);
    }
    process.stdout.write(`liveportrait: serving the web page at ${s.url} (Ctrl-C to stop)\n`);
    await new Promise<void>((done) => {
      const stop = () => void s.close().then(done);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};
