import { runCli } from './index.js';

// A command may have set process.exitCode itself (`supervise` exits with the app's final code).
const code = await runCli(process.argv.slice(2));
if (code !== 0) process.exitCode = code;
