import { execFileSync } from 'node:child_process';

/**
 * Path of a binary the tests need, or a loud failure naming the Debian package that provides it.
 * Tests never skip silently for a missing binary: `.ci/run` installs every one of them.
 */
export function requireBinary(name: string, debianPackage: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      `MISSING BINARY: this test needs \`${name}\` (Debian package \`${debianPackage}\`). ` +
        `Install it with \`apt-get install -y ${debianPackage}\`; .ci/run does this on CI.`,
    );
  }
}
