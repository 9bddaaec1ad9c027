#!/usr/bin/env node
// The `bulwark` command: the compiled CLI in dist/ (built by `npm run build`, which `npm install` runs).
import '../dist/cli/main.js';
