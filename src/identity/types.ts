/**
 * What the rest of Ferry needs from identity: a validated caller (TokenInfo) and something
 * that validates tokens (TokenValidator). The API depends on the interface only, so tests
 * can hand it a fake and ferry-api hands it the KeystoneClient.
 */

/** A validated Keystone token, as keystonemiddleware exposes it in the X-* headers. */
export interface TokenInfo {
  user_id: string;
  user_name: string | null;
  user_domain_id: string | null;
  user_domain_name: string | null;
  /** Null for a domain- or system-scoped token. */
  project_id: string | null;
  project_name: string | null;
  project_domain_id: string | null;
  project_domain_name: string | null;
  /** Set for a domain-scoped token. */
  domain_id: string | null;
  domain_name: string | null;
  /** "all" for a system-scoped token. */
  system_scope: string | null;
  /** Role names, as Keystone spells them. */
  roles: string[];
  /** ISO 8601, as Keystone returns it. */
  expires_at: string;
  issued_at: string | null;
  audit_ids: string[];
  /** Keystone's flag; false when the token does not carry it. */
  is_admin_project: boolean;
}

export interface TokenValidator {
  /**
   * Resolves the token's data, or null when the token is invalid or expired.
   * Rejects with IdentityUnavailable when Keystone cannot answer.
   */
  validateToken(subjectToken: string): Promise<TokenInfo | null>;
}

/** Password credentials for a project-scoped token (the shape of the dev cloud's credentials). */
export interface PasswordCredentials {
  username: string;
  password: string;
  project_name: string;
  user_domain_name: string;
  project_domain_name: string;
}

export interface CatalogEndpoint {
  id?: string;
  interface: string;
  region: string | null;
  region_id: string | null;
  url: string;
}

export interface CatalogService {
  id?: string;
  type: string;
  name?: string;
  endpoints: CatalogEndpoint[];
}
