// Small pieces of lists: a table's column headings, paging through a cursor-paged list (back to
// the first page, on to the API's `next`), and name=value pairs (labels, matchers, tags).

/**
 * "First page" when not on it (`first`), "Next page" when the answer had a `next`; nothing when
 * both are absent. `go(null)` goes to the first page, `go(cursor)` to the next.
 */
export function Pager(props: {
  label: string;
  first: boolean;
  next: string | null | undefined;
  go: (cursor: string | null) => void;
}) {
  const { next } = props;
  if (!props.first && (next === null || next === undefined)) return null;
  return (
    <nav class="pager" aria-label={props.label}>
      {props.first && (
        <button type="button" onClick={() => props.go(null)}>
          First page
        </button>
      )}
      {next !== null && next !== undefined && (
        <button type="button" onClick={() => props.go(next)}>
          Next page
        </button>
      )}
    </nav>
  );
}

/** `name=value` pairs as a compact list (labels, matchers, tags, user context); values not text as JSON. */
export function Pairs(props: { values: Record<string, unknown> }) {
  return (
    <ul class="labels">
      {Object.entries(props.values).map(([name, value]) => (
        <li key={name}>
          <code>
            {name}={typeof value === 'string' ? value : JSON.stringify(value)}
          </code>
        </li>
      ))}
    </ul>
  );
}

/** A table's head: one column heading per name, and "Actions" last when `actions`. */
export function Columns(props: { names: string[]; actions?: boolean }) {
  return (
    <thead>
      <tr>
        {props.names.map((name) => (
          <th key={name} scope="col">
            {name}
          </th>
        ))}
        {props.actions === true && <th scope="col">Actions</th>}
      </tr>
    </thead>
  );
}
