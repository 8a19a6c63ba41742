// swift-tools-version:5.4
// libFuzzer targets for EnclaveKit's parsers of untrusted bytes. Not part of the main package: build and run them
// with `Scripts/fuzz.sh` (see README.md), which passes `-sanitize=fuzzer,address` to every Swift module.
//
// Tools version 5.4 on purpose: from 5.5 on, SwiftPM renames an executable's entry point to `<module>_main` and
// links `main` to it, but here `main` is libFuzzer's.
import Foundation
import PackageDescription

/// The root package is `..`; SwiftPM names a path dependency after its directory, whatever the clone is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootPackage = root.lastPathComponent

func product(_ name: String) -> Target.Dependency { .product(name: name, package: rootPackage) }

let attestation: [Target.Dependency] = [product("Attestation"), product("EnclaveCore")]

/// One executable per parser: (target name, dependencies). Each defines `LLVMFuzzerTestOneInput`; libFuzzer supplies
/// `main`.
let fuzzers: [(String, [Target.Dependency])] = [
    ("FuzzDCAPQuote", attestation),
    ("FuzzSEVSNPReport", attestation),
    ("FuzzSEVSNPCertificateTable", attestation),
    ("FuzzAMDCertificate", attestation),
    ("FuzzCRL", attestation),
    ("FuzzCollateralJSON", attestation),
    ("FuzzJSONValue", attestation),
    // The shared tokenizer under all three of its readers (KeyBroker brings CleanRoom and AttestationAPI).
    ("FuzzJSONReaders", attestation + [product("KeyBroker")]),
    ("FuzzTCBInfo", attestation),
    ("FuzzQEIdentity", attestation),
    ("FuzzVTPMEvidence", attestation),
    ("FuzzHCLReport", attestation),
    ("FuzzTPMQuote", attestation),
    // The policy sources are self-contained: they are compiled here from Sources/AttestationService/Policy (a
    // symbolic link), which spares building the service's server stack with the fuzzer's instrumentation.
    ("FuzzPolicy", attestation),
    ("FuzzBinaryCodec", [product("EnclaveCore")]),
    // _EnclaveChannel is not a product: EnclaveRuntime brings it.
    ("FuzzFrameReader", [product("EnclaveRuntime"), product("EnclaveCore")]),
]

let package = Package(
    name: "EnclaveKitFuzz",
    dependencies: [.package(path: "..")],
    targets: fuzzers.map { name, dependencies in
        .executableTarget(name: name, dependencies: dependencies)
    }
)
