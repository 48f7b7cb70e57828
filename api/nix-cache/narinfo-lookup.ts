import fs from 'node:fs';
import { LRUCache } from 'lru-cache';
import type { Db } from '../../lib/db';
import { narFingerprint, renderNarInfo } from '../../lib/binary-cache/narinfo';
import { narFilePath } from '../../lib/binary-cache/nar-files';
import type { NixSigningKey } from '../../lib/binary-cache/nix-signing-key';
import { findCachedPathByHashPart } from '../queries/binary-cache';

interface RenderedNarInfo {
  text: string;
  file: string;
}

/**
 * Answers narinfo lookups from an in-memory LRU of signed, rendered narinfos (a minute at most, so that
 * pruned paths drop out), falling back to one indexed query; misses are remembered for 5 seconds. A path whose NAR file is gone answers
 * undefined, as an unknown one does.
 */
export class NarInfoLookup {
  private readonly rendered = new LRUCache<string, RenderedNarInfo>({ max: 20_000, ttl: 60_000 });
  /**
   * Recent misses, for a few seconds: a client asks every substituter about every path it needs, mostly
   * paths this cache never had. (Nix itself remembers a miss for an hour, so this delays nothing it would see.)
   */
  private readonly missing = new LRUCache<string, true>({ max: 50_000, ttl: 5_000 });

  constructor(
    private readonly db: Db,
    private readonly dataDir: string,
    private readonly key: NixSigningKey,
  ) {}

  async narInfo(hashPart: string): Promise<string | undefined> {
    let entry = this.rendered.get(hashPart);
    if (!entry) {
      if (this.missing.has(hashPart)) return undefined;
      const info = await findCachedPathByHashPart(this.db, hashPart);
      if (!info) {
        this.missing.set(hashPart, true);
        return undefined;
      }
      entry = { text: renderNarInfo(info, [this.key.sign(narFingerprint(info))]), file: narFilePath(this.dataDir, info.fileHash, info.compression) };
      this.rendered.set(hashPart, entry);
    }
    if (!fs.existsSync(entry.file)) {
      this.rendered.delete(hashPart);
      return undefined;
    }
    return entry.text;
  }
}
