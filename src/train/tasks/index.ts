/** Verifiable tasks for R1-Zero style RL and cold-start SFT: see each file's header. */
export * from './types.js';
export { SPLIT_FRACTIONS, splitOf, canonicalHash } from './split.js';
export { extractAnswer, answerPart, normalizeAnswerText, parseExactNumber, lastNumberText } from './answer.js';
export type { Extraction, AnswerSource, ExtractOptions, NumberPolicy } from './answer.js';
export { arithmeticTask, makeArithmeticProblem, type ArithmeticData } from './arithmetic.js';
export { countdownTask, makeCountdownProblem, checkCountdownExpression, type CountdownData } from './countdown.js';
export { solveCountdown } from './countdown-solver.js';
export { linearTask, makeLinearProblem, type LinearData } from './linear.js';
export { sortTask, makeSortProblem, type SortData } from './sort.js';
export { TASKS, TASK_NAMES, getTask, verifyProblem, solutionFor, type TaskName } from './registry.js';
export * from './reward.js';
export * from './prompt.js';
