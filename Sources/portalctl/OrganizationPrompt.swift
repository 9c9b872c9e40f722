import ArgumentParser
import Foundation
import PortalClient

/// Lets a person whose email belongs to several organizations pick one: from a numbered list on a
/// terminal, or — without a terminal — by saying to sign in again with `--org`.
enum OrganizationPrompt {
    /// The id of the organization chosen among `choices`; exit status 64 when no one can be asked.
    static func choose(from choices: [Portal_Identity_V1_OrganizationChoice], json: Bool) throws -> String {
        guard isatty(STDIN_FILENO) != 0 else {
            if json { try Output.json(["organization_choices": choices.map(JSONRecords.choice)]) }
            var message = "portalctl: your email belongs to several organizations; choose one with --org:\n"
            for choice in choices { message += "  --org \(choice.organizationID)   \(choice.name)\n" }
            FileHandle.standardError.write(Data(message.utf8))
            throw ExitCode(64)
        }
        var listing = "Your email belongs to several organizations:\n"
        for (index, choice) in choices.enumerated() {
            listing += "  \(index + 1)  \(choice.name)  (\(choice.organizationID))\n"
        }
        FileHandle.standardError.write(Data(listing.utf8))
        while true {
            FileHandle.standardError.write(Data("Organization [1-\(choices.count)]: ".utf8))
            guard let line = readLine()?.trimmingCharacters(in: .whitespaces) else { throw ExitCode(64) }
            if let picked = pick(line, from: choices) { return picked }
            FileHandle.standardError.write(
                Data("Type a number from 1 to \(choices.count), or an organization id.\n".utf8))
        }
    }

    /// The organization a typed answer names: its number in the list, its id or its name.
    static func pick(_ answer: String, from choices: [Portal_Identity_V1_OrganizationChoice]) -> String? {
        if let number = Int(answer), choices.indices.contains(number - 1) { return choices[number - 1].organizationID }
        return choices.first { $0.organizationID == answer || $0.name.caseInsensitiveCompare(answer) == .orderedSame }?
            .organizationID
    }
}
