/**
 * A small RFC 4180 CSV reader for `circumplex evaluate`: quoted fields may hold commas, doubled
 * quotes (`""`) and line breaks (EmoBank sentences have all three); CRLF or LF line ends; a UTF-8 BOM
 * is ignored. Each record keeps the line number where it starts, so errors can name the row as an
 * editor shows it. Pure, no dependencies.
 */

/** One record: its fields and the 1-based line where it starts. */
export interface CsvRecord {
  readonly line: number;
  readonly fields: readonly string[];
}

/** A CSV syntax problem at a line (an unterminated quote, text after a closing quote). */
export class CsvSyntaxError extends Error {
  constructor(
    readonly line: number,
    /** The problem without the line number. */
    readonly what: string,
  ) {
    super(`line ${line}: ${what}`);
    this.name = 'CsvSyntaxError';
  }
}

/**
 * Parses CSV text into records. Blank lines (no characters at all) are skipped; a record of only
 * empty fields such as `,,` is kept (the caller decides). Throws {@link CsvSyntaxError}.
 */
export function parseCsv(text: string): CsvRecord[] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let i = 0;
  // Whether the current record has any character yet (a blank line is not a record).
  let started = false;
  const endField = (): void => {
    fields.push(field);
    field = '';
  };
  const endRecord = (): void => {
    if (started) {
      endField();
      records.push({ line: recordLine, fields });
    }
    fields = [];
    field = '';
    started = false;
  };
  while (i < s.length) {
    const c = s[i];
    if (c === '"' && field === '') {
      // A quoted field: runs to the closing quote; "" is a literal quote; may span lines.
      if (!started) recordLine = line;
      started = true;
      const quoteLine = line;
      i++;
      let closed = false;
      while (i < s.length) {
        const q = s[i];
        if (q === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          closed = true;
          i++;
          break;
        }
        if (q === '\n') line++;
        field += q;
        i++;
      }
      if (!closed) throw new CsvSyntaxError(quoteLine, 'a quoted field is not closed (a " without its closing ")');
      // After the closing quote: a separator, a line end or the end of the text.
      const n = s[i];
      if (n !== undefined && n !== ',' && n !== '\n' && n !== '\r') {
        throw new CsvSyntaxError(line, `unexpected ${JSON.stringify(n)} after a closing quote (write a quote inside a quoted field as "")`);
      }
      // Mark the field as quoted-complete: an empty quoted field ("") must still count as a field.
      continue;
    }
    if (c === ',') {
      if (!started) recordLine = line;
      started = true;
      endField();
      i++;
      continue;
    }
    if (c === '\r' || c === '\n') {
      endRecord();
      if (c === '\r' && s[i + 1] === '\n') i++;
      i++;
      line++;
      continue;
    }
    if (!started) recordLine = line;
    started = true;
    field += c;
    i++;
  }
  endRecord();
  return records;
}
