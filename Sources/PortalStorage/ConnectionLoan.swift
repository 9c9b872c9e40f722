import PostgresNIO
import Synchronization

/// A pool connection leased by a task of its own and lent to the caller, so the wait for it can be
/// abandoned: PostgresNIO's pool keeps a lease request waiting until the server is back, however
/// long that takes, and a request abandoned here fails at once instead.
///
/// The lender (the task holding the lease) calls `lend` and is suspended until the borrower calls
/// `giveBack`; the borrower calls `borrow`, which ends with the connection or, once `abandon` was
/// called before a connection came, with the error given there.
final class ConnectionLoan: Sendable {
    private enum State {
        case waiting(borrower: CheckedContinuation<PostgresConnection, any Error>?)
        case offered(PostgresConnection, lender: CheckedContinuation<Void, Never>)
        case lent(lender: CheckedContinuation<Void, Never>?)
        case abandoned(any Error)
        case returned
    }

    private let state = Mutex<State>(.waiting(borrower: nil))

    /// Leases a connection from `client` for `body`: the wait ends with an error when the loan is
    /// abandoned (by `waiting`, or when the caller is cancelled) before a connection came.
    static func withConnection<Result>(
        from client: PostgresClient, waiting: WaitingLoans, _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let loan = ConnectionLoan()
        let lender = Task {
            do {
                try await client.withConnection { connection in await loan.lend(connection) }
            } catch {
                loan.abandon(error)
            }
        }
        let key = waiting.add(loan, lender: lender)
        let connection: PostgresConnection
        do {
            connection = try await withTaskCancellationHandler {
                try await loan.borrow()
            } onCancel: {
                loan.abandon(CancellationError())
                lender.cancel()
            }
            waiting.remove(key)
        } catch {
            waiting.remove(key)
            lender.cancel()
            throw error
        }
        defer { loan.giveBack() }
        return try await body(connection)
    }

    /// The lender's side: hands `connection` over and returns once it is given back (at once when
    /// the loan was abandoned meanwhile).
    func lend(_ connection: PostgresConnection) async {
        await withCheckedContinuation { (lender: CheckedContinuation<Void, Never>) in
            let borrower = state.withLock { state -> CheckedContinuation<PostgresConnection, any Error>?? in
                switch state {
                case .waiting(let borrower?):
                    state = .lent(lender: lender)
                    return .some(borrower)
                case .waiting(nil):
                    state = .offered(connection, lender: lender)
                    return .some(nil)
                default:
                    return nil  // abandoned: the lease ends at once
                }
            }
            switch borrower {
            case .some(let waiting?): waiting.resume(returning: connection)
            case .some(nil): break
            case nil: lender.resume()
            }
        }
    }

    /// The borrower's side: the connection, or the error the loan was abandoned with.
    func borrow() async throws -> PostgresConnection {
        try await withCheckedThrowingContinuation { (borrower: CheckedContinuation<PostgresConnection, any Error>) in
            let outcome = state.withLock { state -> Result<PostgresConnection, any Error>? in
                switch state {
                case .offered(let connection, let lender):
                    state = .lent(lender: lender)
                    return .success(connection)
                case .abandoned(let error):
                    return .failure(error)
                default:
                    state = .waiting(borrower: borrower)
                    return nil
                }
            }
            if let outcome { borrower.resume(with: outcome) }
        }
    }

    /// Ends the wait with `error` unless a connection was already lent.
    func abandon(_ error: any Error) {
        let (borrower, lender) = state.withLock {
            state -> (CheckedContinuation<PostgresConnection, any Error>?, CheckedContinuation<Void, Never>?) in
            switch state {
            case .waiting(let borrower):
                state = .abandoned(error)
                return (borrower, nil)
            case .offered(_, let lender):
                state = .abandoned(error)
                return (nil, lender)
            default:
                return (nil, nil)
            }
        }
        borrower?.resume(throwing: error)
        lender?.resume()
    }

    /// Gives the connection back: the lender's lease ends.
    func giveBack() {
        let lender = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard case .lent(let lender) = state else { return nil }
            state = .returned
            return lender
        }
        lender?.resume()
    }
}

/// Loans waiting for a connection, abandoned together when the server stops answering.
final class WaitingLoans: Sendable {
    private let loans = Mutex<(next: Int, waiting: [Int: (loan: ConnectionLoan, lender: Task<Void, Never>)])>((0, [:]))

    /// Registers `loan`, leased by `lender`; returns the key to remove it with.
    func add(_ loan: ConnectionLoan, lender: Task<Void, Never>) -> Int {
        loans.withLock { loans in
            let key = loans.next
            loans.next += 1
            loans.waiting[key] = (loan, lender)
            return key
        }
    }

    /// Removes the loan registered under `key`.
    func remove(_ key: Int) {
        _ = loans.withLock { $0.waiting.removeValue(forKey: key) }
    }

    /// Abandons every waiting loan with `error`.
    func abandonAll(_ error: any Error) {
        let waiting = loans.withLock { loans in
            defer { loans.waiting.removeAll() }
            return Array(loans.waiting.values)
        }
        for (loan, lender) in waiting {
            loan.abandon(error)
            lender.cancel()  // the pool drops the lease request
        }
    }
}
