/** The verifiable tasks by name, and dispatch helpers for mixed problem lists. */
import { arithmeticTask } from './arithmetic.js';
import { countdownTask } from './countdown.js';
import { linearTask } from './linear.js';
import { sortTask } from './sort.js';
import type { ExtractOptions } from './answer.js';
import type { Problem, Task, Verdict, WorkedSolution } from './types.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyTask = Task<any>;

export const TASKS = {
  arithmetic: arithmeticTask as AnyTask,
  countdown: countdownTask as AnyTask,
  linear: linearTask as AnyTask,
  sort: sortTask as AnyTask,
} as const;

export type TaskName = keyof typeof TASKS;
export const TASK_NAMES = Object.keys(TASKS) as TaskName[];

export function getTask(name: string): AnyTask {
  if (!Object.prototype.hasOwnProperty.call(TASKS, name)) {
    throw new Error(`unknown task ${JSON.stringify(name)}; known tasks: ${TASK_NAMES.join(', ')}`);
  }
  return TASKS[name as TaskName];
}

/** Verifies with the task named in `problem.task`. */
export function verifyProblem(problem: Problem, completion: string, options: ExtractOptions = {}): Verdict {
  return getTask(problem.task).verify(problem, completion, options);
}

export function solutionFor(problem: Problem): WorkedSolution {
  return getTask(problem.task).solution(problem);
}
