/**
 * The shape of src/ by its imports: no module imports itself through others (a cycle makes the
 * load order matter and the two modules one in all but name), and the benchmark and the dev
 * cloud reach the conductor only through what it offers callers. Type-only imports count: they
 * leave no trace at run time, but a cycle of types still ties the two modules' changes together.
 */
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';

/** Relative module specifiers of `import`, `import type`, `export ... from` and `import('...')`. */
function relativeImports(source: string): string[] {
  // Comments may show imports as examples; they are not imports.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  const statement = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\sfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/g;
  const dynamic = /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;
  for (const m of code.matchAll(statement)) found.push(m[1]);
  for (const m of code.matchAll(dynamic)) found.push(m[1]);
  return found;
}

/** The .ts file a specifier names ('./x.js' -> x.ts, './dir' -> dir/index.ts), or null. */
function resolve(from: string, spec: string, exists: (p: string) => boolean): string | null {
  const base = path.posix.join(path.posix.dirname(from), spec);
  const candidates = [base.replace(/\.js$/, '.ts'), `${base}.ts`, `${base}/index.ts`];
  return candidates.find(exists) ?? null;
}

type Graph = Map<string, string[]>;

/** Every .ts file under `root` with the files it imports; specifiers that name no file are returned apart. */
function importGraph(root: string): { graph: Graph; unresolved: string[] } {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.posix.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) files.push(p);
    }
  };
  walk(root);
  const known = new Set(files);
  const graph: Graph = new Map();
  const unresolved: string[] = [];
  for (const f of files) {
    const deps: string[] = [];
    for (const spec of relativeImports(fs.readFileSync(f, 'utf8'))) {
      const target = resolve(f, spec, (p) => known.has(p));
      if (target) deps.push(target);
      else unresolved.push(`${f}: ${spec}`);
    }
    graph.set(f, [...new Set(deps)]);
  }
  return { graph, unresolved };
}

/** The groups of modules that reach each other (strongly connected, more than one, or one importing itself), sorted. */
function cycles(graph: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(group.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}

/**
 * What src/bench/ and src/devcloud/ may import from src/conductor/: the RPC client, the types
 * and method contracts meant for callers, and the module that embeds a conductor in-process.
 */
const CONDUCTOR_PUBLIC = new Set(['src/conductor/rpcapi.ts', 'src/conductor/interface.ts', 'src/conductor/methods.ts', 'src/conductor/embedded.ts']);
const CONDUCTOR_CALLERS = ['src/bench/', 'src/devcloud/'];

/** Imports from a caller folder into the conductor other than its public modules, as "file -> target". */
function conductorInternalsUsed(graph: Graph): string[] {
  const out: string[] = [];
  for (const [file, deps] of graph) {
    if (!CONDUCTOR_CALLERS.some((c) => file.startsWith(c))) continue;
    for (const d of deps) if (d.startsWith('src/conductor/') && !CONDUCTOR_PUBLIC.has(d)) out.push(`${file} -> ${d}`);
  }
  return out.sort();
}

describe('the import scanner', () => {
  it('finds static, type-only, re-exported, side-effect and dynamic relative imports, across lines', () => {
    const source = [
      "import fs from 'node:fs';",
      "import { a, type B } from './a.js';",
      "import type { C } from '../c.js';",
      'import {',
      '  d,',
      '  e,',
      "} from './de.js';",
      "export { f } from './f.js';",
      "export * from './g.js';",
      "import './side.js';",
      "const h = await import('./h.js');",
      "// import { x } from './comment.js';",
      "/** import { y } from './doc.js' */",
      "const s = 'import nothing from here';",
    ].join('\n');
    expect(relativeImports(source)).toEqual(['./a.js', '../c.js', './de.js', './f.js', './g.js', './side.js', './h.js']);
  });

  it('resolves .js specifiers and folders to the .ts files', () => {
    const files = new Set(['src/x/a.ts', 'src/y/index.ts']);
    expect(resolve('src/x/b.ts', './a.js', (p) => files.has(p))).toBe('src/x/a.ts');
    expect(resolve('src/x/b.ts', '../y/index.js', (p) => files.has(p))).toBe('src/y/index.ts');
    expect(resolve('src/x/b.ts', '../y', (p) => files.has(p))).toBe('src/y/index.ts');
    expect(resolve('src/x/b.ts', './gone.js', (p) => files.has(p))).toBeNull();
  });

  it('reports each cycle once, with every module in it, and a module importing itself', () => {
    const graph: Graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
      ['f', ['d']],
    ]);
    expect(cycles(graph)).toEqual([['a', 'b', 'c'], ['e']]);
  });

  it('flags a caller reaching into the conductor, and lets it use the public modules', () => {
    const graph: Graph = new Map([
      ['src/bench/x.ts', ['src/conductor/service.ts', 'src/conductor/embedded.ts']],
      ['src/devcloud/y.ts', ['src/conductor/rpcapi.ts', 'src/conductor/repository.ts']],
      ['src/cmd/conductor.ts', ['src/conductor/service.ts']],
    ]);
    expect(conductorInternalsUsed(graph)).toEqual(['src/bench/x.ts -> src/conductor/service.ts', 'src/devcloud/y.ts -> src/conductor/repository.ts']);
  });
});

describe('src/ by its imports', () => {
  const { graph, unresolved } = importGraph('src');

  it('reads every module and finds the file of every relative import', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(unresolved).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it("lets src/bench/ and src/devcloud/ use only the conductor's public modules", () => {
    expect(conductorInternalsUsed(graph)).toEqual([]);
  });

  it('knows every public conductor module it allows', () => {
    for (const f of CONDUCTOR_PUBLIC) expect(graph.has(f)).toBe(true);
  });
});
