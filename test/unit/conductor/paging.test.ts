/** The repository's tests (paging, records, claims) on the embedded SQLite in memory; the MariaDB leg is in test/integration/db. */
import { describe } from '@jest/globals';
import { SqliteRepository } from '../../../src/conductor/repository.js';
import { openDatabase, syncSchema } from '../../../src/db/schema.js';
import { repositorySuite } from '../../helpers/repository-suite.js';

describe('SQLite (memory)', () => {
  repositorySuite(async () => {
    const db = openDatabase('sqlite:///:memory:');
    syncSchema(db);
    return new SqliteRepository(db);
  });
});
