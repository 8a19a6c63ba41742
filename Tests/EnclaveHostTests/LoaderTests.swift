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

    /// A library measured, then swapped for another file (a new inode at the same path) before the enclave maps
    /// it, or rewritten in place, is refused when the enclave reports its mappings; the file that was measured
    /// passes. (The libraries of the test enclave belong to the toolchain, so the swap happens in a temporary
    /// directory, between measuring the file and checking the enclave's report.)
    @Test func libraryReplacedAfterMeasurementIsRefused() throws {
        let directory = try Fixtures.temporaryDirectory()
        let library = directory + "/libmeasured.so"
        try Data("the library that was measured".utf8).write(to: URL(fileURLWithPath: library))
        let (bytes, measuredIdentity) = try FileIdentity.read(library)
        let manifest = EnclaveManifest(
            imageDigest: .zero,
            trustedFiles: [.init(path: library, digest: try Digest32(bytes: SHA256.hash(data: bytes)))],
            maxThreads: 1,
            maxMemory: 1 << 30
        )
        let measured = [library: measuredIdentity]
        func report(_ identity: FileIdentity) -> LaunchProtocol.Hello {
            let mapping = LaunchProtocol.Mapping(path: library, device: identity.device ?? "", inode: identity.inode)
            return LaunchProtocol.Hello(pid: 1, mappedFiles: [library], sandboxed: true, mappings: [mapping])
        }
        #expect(
            StartupState.checkIdentities(report(measuredIdentity), measured: measured, image: nil, against: manifest)
                == nil
        )

        // Swapped: another file renamed over the path, which the enclave then maps.
        let swapped = directory + "/libswapped.so"
        try Data("a library nobody measured".utf8).write(to: URL(fileURLWithPath: swapped))
        #expect(rename(swapped, library) == 0)
        let mappedIdentity = try FileIdentity.read(library).identity
        #expect(mappedIdentity.inode != measuredIdentity.inode)
        // The path check alone — all the loader had before — accepts the swap.
        #expect(StartupState.checkMappings([library], against: manifest) == nil)
        let replaced = StartupState.checkIdentities(
            report(mappedIdentity),
            measured: measured,
            image: nil,
            against: manifest
        )
        #expect(replaced?.code == .measurementMismatch)
        #expect(
            replaced?.reason.contains("replaced between measurement and mapping") == true,
            "\(replaced?.reason ?? "")"
        )

        // Rewritten in place: the measured inode, with other bytes by the time it is mapped.
        let other = directory + "/libinplace.so"
        try Data("the library that was measured".utf8).write(to: URL(fileURLWithPath: other))
        let (otherBytes, otherIdentity) = try FileIdentity.read(other)
        let otherManifest = EnclaveManifest(
            imageDigest: .zero,
            trustedFiles: [.init(path: other, digest: try Digest32(bytes: SHA256.hash(data: otherBytes)))],
            maxThreads: 1,
            maxMemory: 1 << 30
        )
        let handle = try #require(FileHandle(forUpdatingAtPath: other))
        try handle.write(contentsOf: Data("THE".utf8))
        try handle.close()
        #expect(try FileIdentity.read(other).identity == otherIdentity)
        let mapping = LaunchProtocol.Mapping(
            path: other,
            device: otherIdentity.device ?? "",
            inode: otherIdentity.inode
        )
        let rewritten = StartupState.checkIdentities(
            LaunchProtocol.Hello(pid: 1, mappedFiles: [other], sandboxed: true, mappings: [mapping]),
            measured: [other: otherIdentity],
            image: nil,
            against: otherManifest
        )
        #expect(rewritten?.code == .measurementMismatch)
        #expect(
            rewritten?.reason.contains("changed between measurement and mapping") == true,
            "\(rewritten?.reason ?? "")"
        )

        // A report that leaves out the inodes of what it mapped is refused, too.
        var bare = report(mappedIdentity)
        bare.mappings = []
        #expect(
            StartupState.checkIdentities(bare, measured: measured, image: nil, against: manifest)?.code
                == .measurementMismatch
        )
    }

    /// End to end: the enclave's own mapping report carries every library's inode, and the sealed image is the
    /// loader's memory file.
    @Test func enclaveReportsTheInodeOfEveryMapping() async throws {
        let signed = try Fixtures.sign()
        let image = try EnclaveImage(path: signed.image)
        #expect(image.trustedFileIdentities.count == image.trustedFiles.count)
        for file in image.trustedFiles {
            let identity = try #require(image.trustedFileIdentities[file.path])
            #expect(identity.inode != 0)
        }
        let enclave = try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        #expect(try await enclave.call(Echo.self, [7]) == [7])
        await enclave.terminate()
    }

    @Test func refusesAnImageThatIsNotELF() async throws {
        let directory = try Fixtures.temporaryDirectory()
        let path = directory + "/script"
        try Data("#!/bin/sh\necho hi\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: EnclaveError.imageUnreadable("")) { try EnclaveImage(path: path) }
    }
}
