// minerva convert <model> <out.gguf> --type <type>: any model Minerva loads, as a GGUF file.
import { convertModel } from '../convert/convert.js';
import { CONVERT_TYPES, isConvertType } from '../convert/file-types.js';
import { tensorProgressBar } from './progress.js';

export interface ConvertCliOptions {
  type: string;
  tokenizer?: string;
  name?: string;
}

export async function convertCommand(model: string, out: string, o: ConvertCliOptions): Promise<void> {
  if (!isConvertType(o.type)) throw new Error(`--type must be one of ${Object.keys(CONVERT_TYPES).join(', ')}, got "${o.type}"`);
  const progress = tensorProgressBar('converting');
  let result;
  try {
    result = await convertModel(model, out, { type: o.type, tokenizer: o.tokenizer, name: o.name, onProgress: progress.update });
  } finally {
    progress.stop();
  }
  const dtypes = Object.entries(result.dtypes).map(([d, n]) => `${n} × ${d}`).join(', ');
  const size = result.bytes >= 2 ** 30 ? `${(result.bytes / 2 ** 30).toFixed(2)} GiB` : `${(result.bytes / 2 ** 20).toFixed(1)} MiB`;
  process.stdout.write(`${result.out}: ${result.architecture}, ${result.type}, ${result.tensors} tensors (${dtypes}), ${size} of weights\n`);
}
