/**
 * Command-line parsing for Ferry's entry points: `node:util`'s parseArgs in strict mode, with
 * its errors turned into InvalidInput messages that name the bad flag plainly
 * ("unknown option --frobnicate", "option --runs needs a value").
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidInput } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs (strict) over `argv`; bad flags and stray arguments throw InvalidInput. */
export function parseCommandLine<O extends Options, P extends boolean>(argv: string[], options: O, allowPositionals: P) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (e) {
    throw new InvalidInput(usageMessage(e as Error & { code?: string }));
  }
}

/** parseArgs' error as a short sentence. */
function usageMessage(e: Error & { code?: string }): string {
  const quoted = /'([^']+)'/.exec(e.message)?.[1] ?? '';
  const flag = quoted.split(' ')[0];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${flag}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument "${quoted}"`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing|ambiguous/.test(e.message) ? `option ${flag} needs a value` : `option ${flag} takes no value`;
    default:
      return e.message;
  }
}
