import { getBackend } from '../tensor/index.js';

export const summary = 'show the compute backend, or describe a model file';

export async function run(args: string[]): Promise<number> {
  const backend = getBackend();
  console.log(`backend: ${backend.name} (${backend.simd}, ${backend.threads} threads)`);
  if (args.length > 0) {
    console.error('frugal info FILE: model description is not implemented yet');
    return 1;
  }
  return 0;
}
