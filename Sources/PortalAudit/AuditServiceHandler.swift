import Foundation
import PortalAPI
import PortalCSV
import PortalRPC
import PortalStorage
import PortalStorageRPC
import PortalTime

/// `portal.audit.v1.AuditService`: appends events idempotently, answers queries and exports, and
/// verifies each organization's hash chain. No RPC changes or deletes an event.
public final class AuditServiceHandler: Portal_Audit_V1_AuditService {
    /// Most events one AppendEvents call may carry.
    static let maxBatch = 1000
    /// Bytes of CSV per streamed message.
    static let chunkBytes = 64 << 10
    /// Rows fetched per step of an export (the list page limit of 500 does not apply to exports).
    static let exportStep = 5000

    let store: AuditStore
    let clock: any ServiceClock
    let pageTokens: PageTokenKeys
    /// Wakes event streams when this instance records events.
    let feed: AuditFeed
    /// The event streams, ended together when the service shuts down.
    let liveStreams: LiveStreams

    /// Webhook endpoints, their queue and dispatcher.
    let webhooks: AuditWebhooks

    init(
        store: AuditStore, clock: any ServiceClock, pageTokens: PageTokenKeys, liveStreams: LiveStreams,
        webhooks: AuditWebhooks
    ) {
        self.store = store
        self.clock = clock
        self.pageTokens = pageTokens
        self.feed = AuditFeed()
        self.liveStreams = liveStreams
        self.webhooks = webhooks
    }

    public func appendEvents(
        request: Portal_Audit_V1_AppendEventsRequest, context: ServerContext
    ) async throws -> Portal_Audit_V1_AppendEventsResponse {
        guard !request.events.isEmpty else {
            throw RPCError.invalidArgument(field: "events", "must hold at least one event")
        }
        guard request.events.count <= Self.maxBatch else {
            throw RPCError.invalidArgument(
                field: "events", "at most \(Self.maxBatch) events per call, got \(request.events.count)")
        }
        let incoming = try request.events.enumerated().map { index, event in
            try Self.validate(event, field: "events[\(index)]")
        }
        let outcome = try await store.append(incoming, now: clock.milliseconds())
        if outcome.stored > 0 {
            feed.recorded(Set(incoming.map(\.organizationID)))
            webhooks.dispatcher.wakeUp()
        }
        var response = Portal_Audit_V1_AppendEventsResponse()
        response.storedCount = Int32(outcome.stored)
        response.duplicateCount = Int32(outcome.duplicates)
        return response
    }

    public func listEvents(
        request: Portal_Audit_V1_ListEventsRequest, context: ServerContext
    ) async throws -> Portal_Audit_V1_ListEventsResponse {
        let filter = try Self.filter(
            organizationID: request.organizationID, timeStart: request.timeStart, timeEnd: request.timeEnd,
            types: request.eventTypes,
            actorMemberID: request.actorMemberID, user: request.user, searchText: request.searchText)
        let paging = try ListPaging(
            pageSize: request.pageSize, pageToken: request.pageToken, orderBy: request.orderBy,
            columns: AuditStore.columns, defaultOrder: "time desc",
            scope: PageTokenScope(
                pageTokens, list: "events",
                request: request.updating {
                    $0.pageToken = ""
                    $0.pageSize = 0
                }))
        let page = try await store.list(filter, paging: paging)
        var response = Portal_Audit_V1_ListEventsResponse()
        response.events = page.events.map(\.api)
        response.nextPageToken = page.nextPageToken
        response.totalSize = page.totalSize
        return response
    }

    public func exportEventsCsv(
        request: Portal_Audit_V1_ExportEventsCsvRequest,
        responses: ResponseWriter<Portal_Audit_V1_ExportEventsCsvResponse>, context: ServerContext
    ) async throws {
        let filter = try Self.filter(
            organizationID: request.organizationID, timeStart: request.timeStart, timeEnd: request.timeEnd,
            types: request.eventTypes,
            actorMemberID: request.actorMemberID, user: request.user, searchText: request.searchText)
        guard let timeFormat = PortalTimeFormat(timeZoneIdentifier: request.timeZone) else {
            throw RPCError.invalidArgument(
                field: "time_zone", "\(RPCError.quote(request.timeZone)) is not an IANA time zone")
        }
        let scope = PageTokenScope(pageTokens, list: "events export", request: request)
        let paging = { (token: String) in
            try ListPaging(
                pageSize: Int32(Self.exportStep), pageToken: token, orderBy: request.orderBy,
                columns: AuditStore.columns, defaultOrder: "time desc", maxPageSize: Self.exportStep, scope: scope)
        }
        let export = CSVExport<AuditStore.ExportRow>(
            header: ["Date & Time", "Message", "Type", "User"], chunkBytes: Self.chunkBytes,
            format: { event in
                [
                    timeFormat.format(milliseconds: event.time), event.message,
                    AuditVocabulary.title(stored: event.eventType), event.user,
                ]
            },
            send: { bytes in try await responses.write(.with { $0.chunk = bytes }) })
        try await store.export(filter, paging: try paging(""), following: paging) { batch in
            try context.checkLive()
            try await export.append(batch)
        }
        try await export.finish()
    }

    public func recentEvents(
        request: Portal_Audit_V1_RecentEventsRequest, context: ServerContext
    ) async throws -> Portal_Audit_V1_RecentEventsResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        guard (0...100).contains(request.limit) else {
            throw RPCError.invalidArgument(field: "limit", "must be between 0 and 100")
        }
        var response = Portal_Audit_V1_RecentEventsResponse()
        response.events = try await store.recent(
            organizationID: organizationID, limit: request.limit == 0 ? 5 : Int(request.limit)
        ).map(\.api)
        return response
    }

    public func verifyChain(
        request: Portal_Audit_V1_VerifyChainRequest, context: ServerContext
    ) async throws -> Portal_Audit_V1_VerifyChainResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        let outcome = try await store.verifyChain(organizationID: organizationID)
        var response = Portal_Audit_V1_VerifyChainResponse()
        response.ok = outcome.reason == nil
        response.eventsChecked = outcome.checked
        response.firstBrokenEventID = outcome.brokenEventID ?? ""
        response.reason = outcome.reason ?? ""
        return response
    }

    // MARK: Validation

    static func required(_ value: String, field: String) throws -> String {
        guard !value.isEmpty else { throw RPCError.invalidArgument(field: field, "is required") }
        guard value.utf8.count <= 128 else { throw RPCError.invalidArgument(field: field, "must be at most 128 bytes") }
        return value
    }

    static func validate(_ event: Portal_Audit_V1_NewEvent, field: String) throws -> AuditStore.Incoming {
        let eventID = try required(event.eventID, field: "\(field).event_id")
        let organizationID = try required(event.organizationID, field: "\(field).organization_id")
        guard let type = AuditVocabulary.stored(event.eventType) else {
            throw RPCError.invalidArgument(field: "\(field).event_type", "must be MEMBERS, LICENSES or ACTIVATIONS")
        }
        guard let time = event.time, time.isValid, time.seconds > 0 else {
            throw RPCError.invalidArgument(field: "\(field).time", "is required and must be a valid time")
        }
        guard !event.message.isEmpty, event.message.count <= 2000 else {
            throw RPCError.invalidArgument(field: "\(field).message", "is required and must be at most 2000 characters")
        }
        guard !event.user.isEmpty, event.user.count <= 320 else {
            throw RPCError.invalidArgument(field: "\(field).user", "is required and must be at most 320 characters")
        }
        return AuditStore.Incoming(
            eventID: eventID, organizationID: organizationID, time: time.milliseconds, eventType: type,
            action: AuditVocabulary.stored(event.action), message: event.message, user: event.user,
            actorMemberID: event.actorMemberID,
            subjectKind: AuditVocabulary.stored(event.subjectKind), subjectID: event.subjectID)
    }

    /// The stored names of `types`; INVALID_ARGUMENT naming `event_types` for an unspecified one.
    static func storedTypes(_ types: [Portal_Audit_V1_EventType]) throws -> [String] {
        try types.map { type in
            guard let stored = AuditVocabulary.stored(type) else {
                throw RPCError.invalidArgument(field: "event_types", "must hold MEMBERS, LICENSES or ACTIVATIONS")
            }
            return stored
        }
    }

    static func filter(
        organizationID: String, timeStart: Google_Protobuf_Timestamp?, timeEnd: Google_Protobuf_Timestamp?,
        types: [Portal_Audit_V1_EventType],
        actorMemberID: String, user: String, searchText: String
    ) throws -> AuditStore.Filter {
        var filter = AuditStore.Filter(organizationID: try required(organizationID, field: "organization_id"))
        if let timeStart {
            guard timeStart.isValid else { throw RPCError.invalidArgument(field: "time_start", "is not a valid time") }
            filter.timeStart = timeStart.milliseconds
        }
        if let timeEnd {
            guard timeEnd.isValid else { throw RPCError.invalidArgument(field: "time_end", "is not a valid time") }
            filter.timeEnd = timeEnd.milliseconds
        }
        if let start = filter.timeStart, let end = filter.timeEnd, end < start {
            throw RPCError.invalidArgument(
                field: "time_end", "must not be before time_start (equal bounds select nothing)")
        }
        filter.eventTypes = try storedTypes(types)
        filter.actorMemberID = actorMemberID
        filter.user = user
        guard searchText.count <= 200 else {
            throw RPCError.invalidArgument(field: "search_text", "must be at most 200 characters")
        }
        filter.searchText = searchText
        return filter
    }
}
