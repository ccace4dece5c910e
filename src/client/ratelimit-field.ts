// The IETF RateLimit and RateLimit-Policy fields (drafts 08+), read as the structured-field
// lists they are: `"minute";r=50;t=30, "day";r=0;t=3600`, one item per quota the upstream keeps.

/** One item of the list: its name and its parameters, as written. */
export interface FieldItem {
  readonly name: string;
  readonly params: ReadonlyMap<string, string>;
}

/** Splits on commas outside quoted strings (a quoted name may hold a comma). */
function members(field: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < field.length; i++) {
    const c = field[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted) {
      out.push(field.slice(start, i));
      start = i + 1;
    }
  }
  out.push(field.slice(start));
  return out.map((m) => m.trim()).filter((m) => m.length > 0);
}

/** The items of a RateLimit or RateLimit-Policy field; an item it cannot read is left out. */
export function parseFieldItems(field: string): FieldItem[] {
  const items: FieldItem[] = [];
  for (const member of members(field)) {
    const [head = '', ...rest] = member.split(';');
    const params = new Map<string, string>();
    for (const param of rest) {
      const at = param.indexOf('=');
      if (at > 0) params.set(param.slice(0, at).trim().toLowerCase(), param.slice(at + 1).trim());
    }
    items.push({ name: head.trim().replace(/^"(.*)"$/, '$1'), params });
  }
  return items;
}
