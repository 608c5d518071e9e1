/**
 * Checks of the files and directories a command reads or writes, run before the work starts, so
 * that a bad path fails at once with a message naming the flag (or config field) and the path,
 * not after minutes of work, and never as a hang: Node 20's recursive mkdirSync loops forever when
 * the system refuses a directory whose parent exists (mkdirSync('/proc/x', { recursive: true })).
 */
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code ?? (error as Error).message;
}

/** An existing, writable directory at `dir` or a clear error; `label` names the flag or field. */
function requireWritableDirectory(dir: string, label: string): void {
  if (!statSync(dir).isDirectory()) throw new Error(`${label}: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch (error) {
    throw new Error(`${label}: cannot write in ${dir} (${reason(error)})`);
  }
}

/** The directories from the deepest existing ancestor of `path` (first) down to `path` (the missing ones follow it). */
function existingAncestorAndMissing(path: string): { existing: string; missing: string[] } {
  const missing: string[] = [];
  let current = resolve(path);
  while (!existsSync(current)) {
    missing.unshift(current);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return { existing: current, missing };
}

/**
 * Creates the output directory `dir` (and its missing parents), one level at a time, or throws
 * an error naming `label` and the directory that could not be made.
 */
export function prepareOutputDir(dir: string, label: string): void {
  const { existing, missing } = existingAncestorAndMissing(dir);
  requireWritableDirectory(existing, label);
  for (const path of missing) {
    try {
      mkdirSync(path);
    } catch (error) {
      throw new Error(`${label}: cannot create directory ${path} (${reason(error)})`);
    }
  }
}

/** An output file the command will write (its directory must exist): not a directory, in a writable directory. */
export function checkOutputFile(path: string, label: string): void {
  if (existsSync(path) && statSync(path).isDirectory()) throw new Error(`${label}: ${path} is a directory, not a file`);
  const parent = dirname(resolve(path));
  if (!existsSync(parent)) throw new Error(`${label}: the directory ${parent} does not exist`);
  requireWritableDirectory(parent, label);
}

/** What is wrong with `path` as an input file (missing, a directory), or undefined. */
export function inputFileProblem(path: string): string | undefined {
  if (!existsSync(path)) return `file not found: ${path}`;
  if (statSync(path).isDirectory()) return `${path} is a directory, not a file`;
  return undefined;
}

/** An input file the command reads: it exists and is a file. */
export function checkInputFile(path: string, label: string): void {
  const problem = inputFileProblem(path);
  if (problem !== undefined) throw new Error(`${label}: ${problem}`);
}

/**
 * A database error (better-sqlite3's codes start with SQLITE_) with the --db flag and path named;
 * other errors as they are. The Store names the file when one that is not a database fails at its
 * first statement ("PATH: file is not a database"): that gets the flag in front.
 */
export function withDatabaseFlag(error: unknown, dbPath: string): unknown {
  const code = (error as { code?: unknown }).code;
  const message = (error as Error).message;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return error;
  if (message.startsWith(`${dbPath}: `)) return new Error(`--db ${message}`);
  return message.includes(dbPath) ? error : new Error(`--db ${dbPath}: ${message}`);
}
