import { runCli } from './index.js';

// `bulwark flags list | head`: a reader that stops early is no error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

// A command may have set process.exitCode itself (`supervise` exits with the app's final code). No
// top-level await: the command runs as a CommonJS bundle (dist/cli/main.cjs, see code-cache.ts).
void runCli(process.argv.slice(2)).then((code) => {
  if (code !== 0) process.exitCode = code;
});
