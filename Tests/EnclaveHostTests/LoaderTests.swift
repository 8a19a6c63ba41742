import Crypto
import EnclaveHost
import Foundation
import TestInterface
import Testing

@Suite("Loading: signature, measurement, debug policy")
struct LoaderTests {
    @Test func loadsASignedEnclaveAndReportsItsIdentity() async throws {
        let signed = try Fixtures.sign()
        let enclave = try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        #expect(enclave.identity == signed.identity)
        // The enclave sees the identity the loader measured.
        #expect(try await enclave.call(Identity.self, Empty()) == signed.identity)
        #expect(enclave.processID != getpid())
        await enclave.terminate()
    }

    @Test func refusesAMissingSignature() async throws {
        var options = Enclave.Options()
        options.signaturePath = "/nonexistent/enclave.sig"
        let error = await #expect(throws: EnclaveError.self) {
            try await Enclave.load(path: Fixtures.product("TestEnclave"), options: options)
        }
        #expect(error?.code == .invalidSignature)
    }

    @Test func refusesAMalformedSignature() async throws {
        let signed = try Fixtures.sign()
        try Data("not a signature".utf8).write(to: URL(fileURLWithPath: signed.signature))
        let error = await #expect(throws: EnclaveError.self) {
            try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        }
        #expect(error?.code == .invalidSignature)
    }

    @Test func refusesAFlippedByteInTheImage() async throws {
        let signed = try Fixtures.sign(copyImage: true)
        let handle = try #require(FileHandle(forUpdatingAtPath: signed.image))
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size - 100)
        let byte = try #require(try handle.read(upToCount: 1))
        try handle.seek(toOffset: size - 100)
        handle.write(Data([byte[0] ^ 0x01]))
        try handle.close()
        let error = await #expect(throws: EnclaveError.self) {
            try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        }
        #expect(error?.code == .measurementMismatch)
    }

    @Test func refusesAFlippedByteInTheSignature() async throws {
        let signed = try Fixtures.sign()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: signed.signature)))
        bytes[bytes.count - 3] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: signed.signature))
        let error = await #expect(throws: EnclaveError.self) {
            try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        }
        #expect(error?.code == .invalidSignature)
    }

    @Test func refusesAChangedConfigValue() async throws {
        let signed = try Fixtures.sign()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: signed.signature)))
        bytes[44] ^= 0x01  // securityVersion, inside the signed body
        try Data(bytes).write(to: URL(fileURLWithPath: signed.signature))
        let error = await #expect(throws: EnclaveError.self) {
            try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        }
        #expect(error?.code == .invalidSignature)
    }

    @Test func refusesADebugEnclaveUnlessTheHostAsks() async throws {
        let signed = try Fixtures.sign(config: EnclaveConfig(productID: 1, securityVersion: 1, debug: true))
        let error = await #expect(throws: EnclaveError.self) {
            try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        }
        #expect(error?.code == .debugNotAllowed)
        let enclave = try await Enclave.load(path: signed.image, options: Fixtures.options(signed, debug: true))
        #expect(enclave.identity.isDebug)
        await enclave.terminate()
    }

    @Test func refusesAnImageSignedForAnotherBinary() async throws {
        let signed = try Fixtures.sign("HelloEnclave")
        let error = await #expect(throws: EnclaveError.self) {
            try await Enclave.load(path: Fixtures.product("TestEnclave"), options: Fixtures.options(signed))
        }
        #expect(error?.code == .measurementMismatch)
    }

    @Test func measurementCoversEveryMappedLibrary() throws {
        let image = try EnclaveImage(path: Fixtures.product("TestEnclave"))
        let paths = image.trustedFiles.map(\.path)
        #expect(paths.contains { $0.hasSuffix("/libc.so.6") })
        #expect(paths.contains { $0.contains("ld-linux") || $0.contains("ld-") })
        let config = EnclaveConfig(productID: 1, securityVersion: 1)
        let signed = image.manifest(config: config)
        try image.check(against: signed)

        var changedLibrary = signed
        changedLibrary.trustedFiles[0].digest = .zero
        let changed = #expect(throws: EnclaveError.self) { try image.check(against: changedLibrary) }
        #expect(changed?.code == .measurementMismatch)
        #expect(changed?.reason.contains(signed.trustedFiles[0].path) == true)

        var missingLibrary = signed
        missingLibrary.trustedFiles.removeLast()
        let missing = #expect(throws: EnclaveError.self) { try image.check(against: missingLibrary) }
        #expect(missing?.reason.contains("not in its signed manifest") == true)

        var extraLibrary = signed
        extraLibrary.trustedFiles.append(.init(path: "/usr/lib/libextra.so", digest: .zero))
        #expect(throws: EnclaveError.measurementMismatch("")) { try image.check(against: extraLibrary) }
    }

    /// An enclave that asks the platform for a key before the loader has checked what it mapped gets nothing; the
    /// same request after the check is served.
    @Test func platformAnswersNothingBeforeTheMappingCheck() async throws {
        let signed = try Fixtures.sign()
        var options = Fixtures.options(signed)
        options.arguments = [EarlyPlatformRequest.argument]
        let enclave = try await Enclave.load(path: signed.image, options: options)
        let outcome = try await enclave.call(EarlyPlatformRequest.self, Empty())
        #expect(outcome.hasPrefix("refused: "), "\(outcome)")
        #expect(outcome.contains("mappings"), "\(outcome)")
        let sealed = try await enclave.call(Seal.self, SealRequest(plaintext: [1, 2], policy: .signerID))
        #expect(try await enclave.call(Unseal.self, sealed) == [1, 2])
        await enclave.terminate()

        let control = try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        #expect(try await control.call(EarlyPlatformRequest.self, Empty()) == "not attempted")
        await control.terminate()
    }

    @Test func refusesAnImageThatIsNotELF() async throws {
        let directory = try Fixtures.temporaryDirectory()
        let path = directory + "/script"
        try Data("#!/bin/sh\necho hi\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: EnclaveError.imageUnreadable("")) { try EnclaveImage(path: path) }
    }
}
