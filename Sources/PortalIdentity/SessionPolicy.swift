/// How long sessions and sign-in choices last.
struct SessionPolicy: Sendable {
    /// A session ends this long after login, whatever happens.
    var lifetime: Int64 = 12 * 3600 * 1000
    /// A session ends after this long without a call.
    var idleTimeout: Int64 = 30 * 60 * 1000
    /// `last_seen_at` is written at most this often per session, to spare the database.
    var touchInterval: Int64 = 60 * 1000
    /// A choice of organization (a sign-in valid in several) must be made within this long.
    var choiceLifetime: Int64 = 5 * 60 * 1000
}
