import ArgumentParser
import Foundation
import PortalClient

/// How results are printed: aligned tables for people, JSON for scripts.
enum Output {
    /// Prints rows under headers, each column as wide as its widest cell.
    static func table(_ headers: [String], _ rows: [[String]]) {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        print(line(headers))
        for row in rows { print(line(row)) }
    }

    /// Prints labelled values, one per line.
    static func fields(_ pairs: [(String, String)]) {
        let width = pairs.map(\.0.count).max() ?? 0
        for (label, value) in pairs {
            print(label.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
        }
    }

    /// Prints a value as pretty JSON with sorted keys.
    static func json(_ value: Any) throws {
        let data = try JSONSerialization.data(
            withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        print(String(decoding: data, as: UTF8.self))
    }

    /// The line under a page: how many rows match and how to get the next page.
    static func pageFooter(shown: Int, total: Int64, nextPageToken: String) {
        print(
            "\n\(shown) of \(total) shown" + (nextPageToken.isEmpty ? "" : "; next page: --page-token \(nextPageToken)")
        )
    }

    private static let display: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "dd MMM yyyy, HH:mm:ss"
        return formatter
    }()

    private static let day: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "dd MMM yyyy"
        return formatter
    }()

    static func date(_ timestamp: Google_Protobuf_Timestamp?) -> Date? {
        timestamp.map { Date(timeIntervalSince1970: Double($0.milliseconds) / 1000) }
    }

    /// `05 Mar 2026, 14:07:09` (UTC), as the portal shows times; "—" when absent.
    static func time(_ timestamp: Google_Protobuf_Timestamp?) -> String {
        date(timestamp).map(display.string(from:)) ?? "—"
    }

    /// `05 Mar 2026`; "never" when absent.
    static func day(_ timestamp: Google_Protobuf_Timestamp?, absent: String = "never") -> String {
        date(timestamp).map(day.string(from:)) ?? absent
    }

    /// ISO 8601 for JSON; null when absent.
    static func iso(_ timestamp: Google_Protobuf_Timestamp?) -> Any {
        date(timestamp).map { ISO8601DateFormatter().string(from: $0) } ?? NSNull()
    }

    /// A date option: `2026-03-05` (UTC midnight) or a full ISO 8601 time.
    static func parseDate(_ text: String?, option: String) throws -> Google_Protobuf_Timestamp? {
        guard let text else { return nil }
        let full = ISO8601DateFormatter()
        if let date = full.date(from: text) {
            return Google_Protobuf_Timestamp(milliseconds: Int64(date.timeIntervalSince1970 * 1000))
        }
        let dayOnly = ISO8601DateFormatter()
        dayOnly.formatOptions = [.withFullDate]
        if let date = dayOnly.date(from: text) {
            return Google_Protobuf_Timestamp(milliseconds: Int64(date.timeIntervalSince1970 * 1000))
        }
        throw ValidationError("\(option): expected a date like 2026-03-05 or 2026-03-05T14:07:09Z, not \(text)")
    }
}

/// Portal records as JSON objects (snake_case keys, ISO 8601 times).
enum JSONRecords {
    static func role(_ role: Portal_Identity_V1_Role) -> String {
        switch role {
        case .admin: "ADMIN"
        case .viewer: "VIEWER"
        default: "UNSPECIFIED"
        }
    }

    static func eventType(_ type: Portal_Audit_V1_EventType) -> String {
        switch type {
        case .members: "MEMBERS"
        case .licenses: "LICENSES"
        case .activations: "ACTIVATIONS"
        default: "UNSPECIFIED"
        }
    }

    static func principal(_ principal: Portal_Identity_V1_Principal?) -> [String: Any] {
        guard let principal else { return [:] }
        return [
            "member_id": principal.memberID, "organization_id": principal.organizationID, "role": role(principal.role),
            "display_name": principal.displayName, "email": principal.email,
        ]
    }

    static func membership(_ membership: Portal_Identity_V1_Membership) -> [String: Any] {
        [
            "organization_id": membership.organizationID, "name": membership.organizationName,
            "role": role(membership.role),
            "current": membership.current,
        ]
    }

    static func choice(_ choice: Portal_Identity_V1_OrganizationChoice) -> [String: Any] {
        ["organization_id": choice.organizationID, "name": choice.name]
    }

    static func product(_ held: Portal_Entitlements_V1_LicensedProduct) -> [String: Any] {
        let product = held.product ?? .init()
        return [
            "product_id": product.productID, "name": product.name, "license_type": product.licenseType,
            "description": product.productDescription, "deployment_type": product.deploymentType,
            "available_licenses": held.availableLicenses, "activated_licenses": held.activatedLicenses,
            "unactivated_licenses": held.unactivatedLicenses,
        ]
    }

    static func entitlement(_ entitlement: Portal_Entitlements_V1_Entitlement) -> [String: Any] {
        [
            "entitlement_id": entitlement.entitlementID, "sales_order": entitlement.salesOrder,
            "po_number": entitlement.poNumber,
            "order_date": Output.iso(entitlement.orderDate), "expiration_date": Output.iso(entitlement.expirationDate),
            "status": entitlement.status == .expired ? "EXPIRED" : "ACTIVE",
            "total_available_licenses": entitlement.totalAvailableLicenses,
            "total_activated_licenses": entitlement.totalActivatedLicenses,
            "lines": entitlement.lines.map { line in
                [
                    "product_id": line.productID, "product_name": line.productName,
                    "description": line.productDescription,
                    "deployment_type": line.deploymentType, "available_licenses": line.availableLicenses,
                    "activated_licenses": line.activatedLicenses, "unactivated_licenses": line.unactivatedLicenses,
                ] as [String: Any]
            },
        ]
    }

    static func activation(_ activation: Portal_Entitlements_V1_Activation) -> [String: Any] {
        [
            "activation_id": activation.activationID, "activation_date": Output.iso(activation.activationDate),
            "product_id": activation.productID, "product_name": activation.productName, "quantity": activation.quantity,
            "project_name": activation.projectName, "project_manager": activation.projectManager,
            "activated_by": activation.activatedBy,
            "entitlement_id": activation.entitlementID, "serial_number": activation.serialNumber,
        ]
    }

    static func event(_ event: Portal_Audit_V1_Event) -> [String: Any] {
        [
            "event_id": event.eventID, "time": Output.iso(event.time), "type": eventType(event.eventType),
            "message": event.message,
            "user": event.user, "subject_id": event.subjectID,
        ]
    }

    static func member(_ member: Portal_Identity_V1_Member) -> [String: Any] {
        [
            "member_id": member.memberID, "first_name": member.firstName, "last_name": member.lastName,
            "email": member.email,
            "phone": member.phone, "role": role(member.role), "created_at": Output.iso(member.createdAt),
        ]
    }

    static func invite(_ invite: Portal_Identity_V1_Invite) -> [String: Any] {
        [
            "invite_id": invite.inviteID, "email": invite.email, "phone": invite.phone, "role": role(invite.role),
            "added_on": Output.iso(invite.addedOn), "expires_at": Output.iso(invite.expiresAt),
            "invited_by": invite.invitedBy,
        ]
    }

    static func page(_ key: String, _ items: [[String: Any]], nextPageToken: String, totalSize: Int64) -> [String: Any]
    {
        [key: items, "next_page_token": nextPageToken, "total_size": totalSize]
    }
}
