// A change as a diff: the fields of `before` and `after` (JSON) that differ, one line each.
export function Diff(props: { before: unknown; after: unknown }) {
  return <DiffTable rows={changes(props.before, props.after, '')} />;
}

/** Changed fields (dotted path, before, after) as a table; nothing when there are none. */
export function DiffTable(props: { rows: Change[] }) {
  const { rows } = props;
  if (rows.length === 0) return null;
  return (
    <table class="diff">
      <tbody>
        {rows.slice(0, 100).map((row) => (
          <tr key={row.path}>
            <th scope="row">
              <code>{row.path || '(value)'}</code>
            </th>
            <td class="del">{row.before === undefined ? '' : <code>{show(row.before)}</code>}</td>
            <td class="ins">{row.after === undefined ? '' : <code>{show(row.after)}</code>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export interface Change {
  path: string;
  before: unknown;
  after: unknown;
}

/** The leaf differences of two JSON values, by dotted path. */
export function changes(before: unknown, after: unknown, path: string): Change[] {
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) => changes(before[key], after[key], path === '' ? key : `${path}.${key}`));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ path, before, after }];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
