import { relative } from 'node:path';
import ts from 'typescript';

/**
 * Finds `any` in a package's public types: starting from the exports of an entry .d.ts, every
 * declaration they name, and every declaration those name in turn (within `root`, so not
 * third-party types), is searched for the `any` keyword in any form (`: any`, `any[]`, `<any>`,
 * `Record<string, any>`, ...). A declaration nothing public names is not searched: the generated
 * code's `fooFromJSON(object: any)` helpers sit in files the client imports, but are no part of
 * what callers see. Private class members carry no types in a .d.ts, so they cannot leak one.
 */

export interface AnyFinding {
  /** file:line relative to `root`. */
  readonly where: string;
  readonly text: string;
}

export interface PublicTypesReport {
  readonly findings: readonly AnyFinding[];
  /** Files whose declarations were searched, relative to `root`. */
  readonly files: readonly string[];
  /** Type errors in the declarations themselves. */
  readonly diagnostics: readonly string[];
}

export function findPublicAny(
  entry: string,
  root: string,
  types: readonly string[] = ['node'],
): PublicTypesReport {
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    types: [...types],
  });
  const checker = program.getTypeChecker();
  const inRoot = (file: ts.SourceFile) =>
    !relative(root, file.fileName).startsWith('..') && !file.fileName.includes('/node_modules/');
  const entryFile = program.getSourceFile(entry);
  if (entryFile === undefined) throw new Error(`cannot read ${entry}`);
  const moduleSymbol = checker.getSymbolAtLocation(entryFile);
  if (moduleSymbol === undefined) throw new Error(`${entry} is not a module`);

  const seen = new Set<ts.Node>();
  const queue: ts.Node[] = [];
  const enqueueSymbol = (symbol: ts.Symbol | undefined) => {
    if (symbol === undefined) return;
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    for (const declaration of target.declarations ?? []) {
      // A whole module (a namespace import) is not one declaration: its used members are.
      if (ts.isSourceFile(declaration) || !inRoot(declaration.getSourceFile())) continue;
      if (!seen.has(declaration)) {
        seen.add(declaration);
        queue.push(declaration);
      }
    }
  };
  for (const exported of checker.getExportsOfModule(moduleSymbol)) enqueueSymbol(exported);

  const findings: AnyFinding[] = [];
  // A member is also a declaration of its own (its name resolves to it): report each any once.
  const reported = new Set<ts.Node>();
  const files = new Set<string>();
  const where = (node: ts.Node) => {
    const file = node.getSourceFile();
    const { line } = file.getLineAndCharacterOfPosition(node.getStart());
    return `${relative(root, file.fileName)}:${line + 1}`;
  };
  while (queue.length > 0) {
    const declaration = queue.shift() as ts.Node;
    files.add(relative(root, declaration.getSourceFile().fileName));
    const visit = (node: ts.Node): void => {
      if (node.kind === ts.SyntaxKind.AnyKeyword && !reported.has(node)) {
        reported.add(node);
        findings.push({ where: where(node), text: node.parent.getText() });
      }
      // Every name used inside leads to what it names (types, values under `typeof`, bases).
      if (ts.isIdentifier(node)) enqueueSymbol(checker.getSymbolAtLocation(node));
      ts.forEachChild(node, visit);
    };
    visit(declaration);
  }
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...program
      .getSourceFiles()
      .filter(inRoot)
      .flatMap((f) => [
        ...program.getSyntacticDiagnostics(f),
        ...program.getSemanticDiagnostics(f),
      ]),
  ].map((d) => {
    const at = d.file === undefined ? '' : `${relative(root, d.file.fileName)}: `;
    return at + ts.flattenDiagnosticMessageText(d.messageText, '\n');
  });
  return { findings, files: [...files].sort(), diagnostics };
}
