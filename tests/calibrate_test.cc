#include "sim/calibration/calibrate.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>

#include "sim/calibration/calibration_data.h"
#include "sim/compute/profile_model.h"

namespace moesim::sim {
namespace {

// Known parameters, of the size a CPU rank shows: R = 0.05 FLOP/ns (50 GFLOP/s), n_half = 40
// tokens, L = 20 us, M = 5 GB/s; one link "nvlink"/"dispatch", full duplex, with alpha = 30 us,
// beta = 2 GB/s and local copies at gamma = 10 GB/s.
constexpr double kRate = 0.05, kHalf = 40, kLaunch = 20'000, kMemory = 5;
constexpr double kAlpha = 30'000, kBeta = 2, kGamma = 10;

// Every time is the model's times (1 + sigma * z), z standard normal from a fixed seed.
struct Noise {
  std::mt19937_64 rng{7};
  std::normal_distribution<double> z{0.0, 1.0};
  double sigma = 0;
  double operator()(double t) { return t * (1 + sigma * z(rng)); }
};

std::vector<Observation> Synthetic(double sigma) {
  Noise noise{.sigma = sigma};
  std::vector<Observation> obs;
  // Grouped GEMM shapes: h = 256, f = 896, n in 16..1024 tokens per expert, 1..8 experts.
  const double per_token = 6.0 * 256 * 896;
  for (double n : {16, 32, 64, 128, 256, 512, 1024}) {
    for (double experts : {1, 2, 4, 8}) {
      const double flops = per_token * n * experts, active = per_token * experts;
      const double t = kLaunch + (flops + active * kHalf) / kRate;
      obs.push_back({Observation::Kind::kExpert, flops, active, 0, "", "", noise(t), "gemm"});
    }
  }
  for (double bytes : {1e5, 3e5, 1e6, 3e6, 1e7, 3e7}) {
    obs.push_back({Observation::Kind::kRouter, bytes, 0, 0, "", "",
                   noise(kLaunch + bytes / kMemory), "router"});
  }
  // One rank sending `bytes` off-rank and receiving a quarter or all of it, keeping half or twice
  // as much (skewed routing: local copies not in proportion to link bytes, and half duplex's
  // sent + received not in proportion to full duplex's max(sent, received) = bytes).
  // local = sent + received + 2 * own.
  struct Mix {
    double received, own;
  };
  for (double bytes : {3e4, 1e5, 3e5, 1e6, 3e6, 1e7, 3e7}) {
    for (const Mix mix : {Mix{0.25, 0.5}, Mix{1.0, 2.0}}) {
      const double received = mix.received * bytes;
      const double local = bytes + received + 2 * mix.own * bytes;
      obs.push_back({Observation::Kind::kAllToAll, bytes, received, local, "nvlink", "dispatch",
                     noise(kAlpha + bytes / kBeta + local / kGamma), "dispatch"});
    }
  }
  return obs;
}

const pb::FittedParameter& Fitted(const pb::HardwareProfile& p, const std::string& name) {
  for (const pb::FittedParameter& f : p.fit()) {
    if (f.name() == name) return f;
  }
  FAIL("no fitted parameter " << name);
  return p.fit(0);
}

bool Refused(const pb::HardwareProfile& p, const std::string& name) {
  for (const std::string& why : p.not_fitted()) {
    if (why.rfind(name + ":", 0) == 0) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("Noise-free synthetic measurements give back the parameters exactly") {
  auto p = FitProfile(Synthetic(0.0), "exact");
  REQUIRE(p.ok());
  // The model is linear in (L, 1/R, n_half/R, 1/M), so noise-free data are fitted to rounding.
  CHECK(p->gpu().gemm_peak_tflops() == Approx(kRate * 1e-3).epsilon(1e-9));
  CHECK(p->gpu().gemm_n_half() == Approx(kHalf).epsilon(1e-9));
  CHECK(p->gpu().launch_overhead_ns() == Approx(kLaunch).epsilon(1e-9));
  CHECK(p->gpu().memory_bandwidth_gbps() == Approx(kMemory).epsilon(1e-9));
  REQUIRE(p->links_size() == 1);
  CHECK(p->links(0).latency_ns() == Approx(kAlpha).epsilon(1e-9));
  CHECK(p->links(0).bandwidth_gbps() == Approx(kBeta).epsilon(1e-9));
  CHECK(p->links(0).local_bandwidth_gbps() == Approx(kGamma).epsilon(1e-9));
  // Half duplex would see 1.25 or 2 x bytes where the times were made with bytes: a worse fit.
  CHECK(p->links(0).duplex() == pb::LinkProfile::FULL);
  REQUIRE(p->notes_size() == 1);
  CHECK(p->notes(0).find("link nvlink dispatch duplex: full (RMS relative residual ") == 0);
  CHECK(p->not_fitted_size() == 0);
}

TEST_CASE("Synthetic measurements with 2 percent noise: parameters recovered within the noise") {
  // sigma = 2% relative noise on 34 GPU and 14 link measurements. The fit reports each
  // parameter's standard error from s^2 (A^T A)^-1 (delta method for R, n_half, M, beta); an
  // unbiased estimate lies within 4 standard errors of the truth with probability 1 - 6e-5 per
  // parameter (Gaussian tails), and the seed is fixed, so the test is deterministic. "Within the
  // noise" also bounds the errors themselves: each standard error is a small multiple of
  // sigma / sqrt(m), so below 3 sigma = 6% here for the rates, and the residual RMS is sigma.
  const double sigma = 0.02;
  auto p = FitProfile(Synthetic(sigma), "noisy");
  REQUIRE(p.ok());
  struct Truth {
    const char* name;
    double value;
  };
  for (const Truth& t :
       {Truth{"gpu.gemm_peak_tflops", kRate * 1e-3}, Truth{"gpu.gemm_n_half", kHalf},
        Truth{"gpu.launch_overhead_ns", kLaunch}, Truth{"gpu.memory_bandwidth_gbps", kMemory},
        Truth{"link nvlink dispatch latency_ns", kAlpha},
        Truth{"link nvlink dispatch bandwidth_gbps", kBeta},
        Truth{"link nvlink dispatch local_bandwidth_gbps", kGamma}}) {
    const pb::FittedParameter& f = Fitted(*p, t.name);
    INFO(t.name << " fitted " << f.value() << " +- " << f.std_error() << ", true " << t.value);
    CHECK(f.std_error() > 0);
    CHECK(std::abs(f.value() - t.value) <= 4 * f.std_error());
    CHECK(f.rms_relative_residual() == Approx(sigma).epsilon(0.35));
  }
  CHECK(Fitted(*p, "gpu.gemm_peak_tflops").std_error() < 3 * sigma * kRate * 1e-3);
  CHECK(Fitted(*p, "gpu.memory_bandwidth_gbps").std_error() < 3 * sigma * kMemory);
  CHECK(Fitted(*p, "link nvlink dispatch bandwidth_gbps").std_error() < 3 * sigma * kBeta);
  // Supporting measurements: 28 expert rows involve the rate; 6 router rows M; all 34 the launch.
  CHECK(Fitted(*p, "gpu.gemm_peak_tflops").measurements() == 28);
  CHECK(Fitted(*p, "gpu.memory_bandwidth_gbps").measurements() == 6);
  CHECK(Fitted(*p, "gpu.launch_overhead_ns").measurements() == 34);
}

TEST_CASE("Unconstrained parameters are refused and named, the rest still fitted") {
  // Every expert measurement has 4 active experts of the same shape: the n_half term is 4 * 6hf *
  // n_half / R in every row, a constant, indistinguishable from the launch overhead. No router
  // measurement: nothing involves the memory bandwidth.
  std::vector<Observation> obs;
  const double active = 4 * 6.0 * 256 * 896;
  for (double n : {64, 128, 256, 512}) {
    const double flops = active * n;
    obs.push_back({Observation::Kind::kExpert, flops, active, 0, "", "",
                   kLaunch + (flops + active * kHalf) / kRate, "expert"});
  }
  auto p = FitProfile(obs, "partial");
  REQUIRE(p.ok());
  CHECK(Refused(*p, "gpu.memory_bandwidth_gbps"));
  CHECK(Refused(*p, "gpu.gemm_n_half"));
  CHECK_FALSE(p->gpu().has_gemm_n_half());
  CHECK_FALSE(p->gpu().has_memory_bandwidth_gbps());
  // The launch term absorbs the constant: L' = L + active * n_half / R; the rate is exact.
  CHECK(p->gpu().gemm_peak_tflops() == Approx(kRate * 1e-3).epsilon(1e-9));
  CHECK(p->gpu().launch_overhead_ns() == Approx(kLaunch + active * kHalf / kRate).epsilon(1e-9));
  for (const std::string& why : p->not_fitted()) {
    if (why.rfind("gpu.memory_bandwidth_gbps", 0) == 0)
      CHECK(why.find("no measurement") != std::string::npos);
  }
}

TEST_CASE("One all-to-all size cannot split latency from bandwidth: latency refused") {
  std::vector<Observation> obs;
  for (int i = 0; i < 3; ++i) {
    obs.push_back({Observation::Kind::kAllToAll, 1e6, 1e6, 3e6, "nvlink", "combine",
                   kAlpha + 1e6 / kBeta, "combine"});
  }
  auto p = FitProfile(obs, "one-size");
  REQUIRE(p.ok());
  CHECK(Refused(*p, "link nvlink combine latency_ns"));
  CHECK(Refused(*p, "link nvlink combine local_bandwidth_gbps"));
  CHECK_FALSE(p->links(0).has_local_bandwidth_gbps());
  REQUIRE(p->links_size() == 1);
  CHECK(p->links(0).latency_ns() == 0);
  CHECK(p->links(0).bandwidth_gbps() == Approx(1e6 / (kAlpha + 1e6 / kBeta)));
}

TEST_CASE("Balanced traffic cannot tell local copies from link bytes: local refused, full kept") {
  // Uniform routing on 2 ranks: sent = received = own = s, so link = s (full) or 2s (half) and
  // local = 4s, all in proportion. Times alpha + s / beta + 4s / gamma are fitted exactly by
  // alpha + s / beta' with 1/beta' = 1/beta + 4/gamma; both duplexes fit equally, full stays.
  std::vector<Observation> obs;
  for (double s : {1e5, 1e6, 1e7}) {
    obs.push_back({Observation::Kind::kAllToAll, s, s, 4 * s, "nvlink", "dispatch",
                   kAlpha + s / kBeta + 4 * s / kGamma, "dispatch"});
  }
  auto p = FitProfile(obs, "balanced");
  REQUIRE(p.ok());
  CHECK(Refused(*p, "link nvlink dispatch local_bandwidth_gbps"));
  REQUIRE(p->links_size() == 1);
  CHECK(p->links(0).duplex() == pb::LinkProfile::FULL);
  CHECK(p->links(0).latency_ns() == Approx(kAlpha).epsilon(1e-9));
  CHECK(1 / p->links(0).bandwidth_gbps() == Approx(1 / kBeta + 4 / kGamma).epsilon(1e-9));
}

TEST_CASE("Skewed traffic through a half-duplex link: half chosen, every parameter recovered") {
  // A CPU rank copies what it sends and what it receives itself: t = alpha + (sent + received) /
  // beta + local / gamma. Ranks receiving 1..4x what they send tell half (sum) from full (max):
  // with full duplex, t would not grow with the received bytes below the sent ones.
  std::vector<Observation> obs;
  // Own rows a tenth or twice what it sends, so that local copies are not link bytes + constant.
  for (double sent : {1e5, 1e6, 1e7}) {
    for (double ratio : {0.25, 1.0, 4.0}) {
      const double own = ratio == 1.0 ? 2 * sent : sent / 10;
      const double received = sent * ratio, local = sent + received + 2 * own;
      obs.push_back({Observation::Kind::kAllToAll, sent, received, local, "shm", "combine",
                     kAlpha + (sent + received) / kBeta + local / kGamma, "combine"});
    }
  }
  auto p = FitProfile(obs, "half");
  REQUIRE(p.ok());
  REQUIRE(p->links_size() == 1);
  CHECK(p->links(0).duplex() == pb::LinkProfile::HALF);
  CHECK(p->links(0).latency_ns() == Approx(kAlpha).epsilon(1e-9));
  CHECK(p->links(0).bandwidth_gbps() == Approx(kBeta).epsilon(1e-9));
  CHECK(p->links(0).local_bandwidth_gbps() == Approx(kGamma).epsilon(1e-9));
  REQUIRE(p->notes_size() == 1);
  CHECK(p->notes(0).find("link shm combine duplex: half") == 0);
}

TEST_CASE("No measurements: a clear error, not an empty profile") {
  auto p = FitProfile({}, "empty");
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().message() ==
        "measurements = none: nothing to fit; valid: at least one measured "
        "Result (moebench run, moebench gemm)");
}

TEST_CASE("A zero or negative measured time is rejected with its source") {
  for (double t : {0.0, -5.0}) {
    std::vector<Observation> obs = Synthetic(0.0);
    obs[3].time_ns = t;
    obs[3].source = "runs/a.pb: phases[2] (expert, layer 0), rank 1";
    auto p = FitProfile(obs, "bad");
    REQUIRE_FALSE(p.ok());
    INFO(p.error().message());
    CHECK(p.error().message().find("runs/a.pb: phases[2] (expert, layer 0), rank 1: time_ns") == 0);
    CHECK(p.error().message().find("valid: > 0") != std::string::npos);
  }
}

TEST_CASE("Data the model cannot explain with a positive rate: that link stays at its datasheet") {
  // Times that fall as the work grows (1e6/bytes ms: 10, 1 and 0.1 ms for 1e5, 1e6, 1e7 bytes):
  // the fitted 1/beta is negative. The link is left out of the profile (its datasheet figures
  // stay), named, and the profile says it is partial; the GPU measurements still fit.
  std::vector<Observation> obs = Synthetic(0);
  std::erase_if(obs, [](const Observation& o) { return o.kind == Observation::Kind::kAllToAll; });
  for (double bytes : {1e5, 1e6, 1e7}) {
    obs.push_back({Observation::Kind::kAllToAll, bytes, 0, 2 * bytes, "nvlink", "dispatch",
                   1e7 / bytes * 1e3, "dispatch"});
  }
  auto p = FitProfile(obs, "contradiction");
  REQUIRE(p.ok());
  CHECK(p->links_size() == 0);
  CHECK(Refused(*p, "link nvlink dispatch bandwidth_gbps"));
  CHECK(Refused(*p, "link nvlink dispatch latency_ns"));
  int partial = 0;
  for (const std::string& note : p->notes()) {
    if (note.rfind(kPartialProfile, 0) == 0) {
      ++partial;
      CHECK(note.find("link nvlink dispatch bandwidth_gbps") != std::string::npos);
    }
  }
  CHECK(partial == 1);
  CHECK(Fitted(*p, "gpu.gemm_peak_tflops").value() == Approx(kRate * 1e-3).epsilon(1e-9));
}

namespace {

std::string WriteTemp(const std::string& name, const std::string& text) {
  const std::string path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path) << text;
  return path;
}

// A `moebench a2a --json` sweep on 4 ranks whose times follow alpha + S (3/4) / beta exactly.
std::string Sweep(const std::string& fidelity, const std::string& op) {
  std::string rows;
  for (double s : {1e5, 1e6, 1e7, 1e8}) {
    const double us = (kAlpha + s * 3 / 4 / kBeta) / 1e3;
    rows += std::string(rows.empty() ? "" : ",") + "{\"sizeBytes\": \"" +
            std::to_string(static_cast<uint64_t>(s)) + "\", \"timeUs\": " + std::to_string(us) +
            "}";
  }
  return "{\"op\": \"" + op + "\", \"gpus\": 4, \"fidelity\": \"" + fidelity + "\", \"rows\": [" +
         rows + "]}";
}

}  // namespace

TEST_CASE("moebench a2a sweeps fit the class's alltoall entry, which dispatch falls back to") {
  const std::string path = WriteTemp("moesim_a2a_sweep.json", Sweep("measured", "alltoall"));
  REQUIRE(IsA2aSweepFile(path));
  auto obs = A2aSweepObservations(path, "nvlink");
  REQUIRE(obs.ok());
  REQUIRE(obs->size() == 4);
  // 1 MB per rank on 4 ranks: 750 kB to the 3 others, as much received; local 2 MB.
  const Observation& o = (*obs)[1];
  CHECK(o.x1 == 750'000);
  CHECK(o.x2 == 750'000);
  CHECK(o.x3 == 2'000'000);
  CHECK(o.collective == "alltoall");
  CHECK(o.source == path + ": rows[1] (1000000 B)");
  auto p = FitProfile(*obs, "a2a");
  REQUIRE(p.ok());
  REQUIRE(p->links_size() == 1);
  // Local bytes are 8/3 of the link bytes in every row: refused; alpha and beta exact (times were
  // printed with 6 decimals of a microsecond, so to 1e-6 relative).
  CHECK(p->links(0).latency_ns() == Approx(kAlpha).epsilon(1e-6));
  CHECK(p->links(0).bandwidth_gbps() == Approx(kBeta).epsilon(1e-6));
  CHECK(Refused(*p, "link nvlink alltoall local_bandwidth_gbps"));
  // Dispatch and combine without entries of their own take the class's alltoall entry.
  CHECK(FindLinkProfile(*p, "nvlink", "dispatch") == &p->links(0));
  CHECK(FindLinkProfile(*p, "nvlink", "alltoall") == &p->links(0));
  CHECK(FindLinkProfile(*p, "infiniband", "dispatch") == nullptr);
}

TEST_CASE("A predicted or uneven all-to-all sweep is not a measurement to fit") {
  const std::string predicted =
      WriteTemp("moesim_a2a_predicted.json", Sweep("analytical", "alltoall"));
  auto a = A2aSweepObservations(predicted, "nvlink");
  REQUIRE_FALSE(a.ok());
  CHECK_THAT(a.error().message(), Catch::Contains("fidelity = \"analytical\": a prediction"));
  const std::string uneven = WriteTemp("moesim_a2a_uneven.json", Sweep("measured", "alltoallv"));
  auto b = A2aSweepObservations(uneven, "nvlink");
  REQUIRE_FALSE(b.ok());
  CHECK_THAT(b.error().message(), Catch::Contains("op = \"alltoallv\""));
}

TEST_CASE("A protocol switch in the data: two size bands, each alpha-beta recovered") {
  // Balanced all-to-alls (sent = received = S, local 4S): below 1 MB alpha 2 us, beta 1 GB/s;
  // from 1 MB on alpha 50 us, beta 4 GB/s (a rendezvous protocol: slower to start, faster to
  // stream). One alpha-beta misses the small sizes by far more than 2x; split at 1 MB, both pieces
  // are exact.
  std::vector<Observation> obs;
  for (double s : {1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7, 3e7}) {
    const double t = s < 1e6 ? 2'000 + s / 1 : 50'000 + s / 4;
    obs.push_back({Observation::Kind::kAllToAll, s, s, 4 * s, "nvlink", "alltoall", t, "a2a"});
  }
  auto p = FitProfile(obs, "bands");
  REQUIRE(p.ok());
  REQUIRE(p->links_size() == 1);
  const pb::LinkProfile& l = p->links(0);
  CHECK(l.latency_ns() == Approx(2'000).epsilon(1e-9));
  CHECK(l.bandwidth_gbps() == Approx(1).epsilon(1e-9));
  REQUIRE(l.has_large_messages());
  CHECK(l.large_messages().min_link_bytes() == 1e6);
  CHECK(l.large_messages().latency_ns() == Approx(50'000).epsilon(1e-9));
  CHECK(l.large_messages().bandwidth_gbps() == Approx(4).epsilon(1e-9));
  bool noted = false;
  for (const std::string& n : p->notes())
    noted |= n.find("link nvlink alltoall size split at 1e+06 link bytes") == 0;
  CHECK(noted);
  // Each rank takes its band: 300 kB -> 2 us + 300 us; 3 MB -> 50 us + 750 us.
  CHECK(AllToAllRankNs(l, AllToAllWork{3e5, 3e5, 1.2e6}) == Approx(302'000).epsilon(1e-9));
  CHECK(AllToAllRankNs(l, AllToAllWork{3e6, 3e6, 1.2e7}) == Approx(800'000).epsilon(1e-9));
}

TEST_CASE("GEMMs that slow down when long: two GEMM bands, each recovered") {
  // Grouped-GEMM sweep shapes (h = 256, f = 896; 1-8 experts, 16-1,024 tokens each). Below 1e9
  // FLOPs the GPU runs at R = 0.05 FLOP/ns with n_half 40 and 20 us launch; from 1e9 FLOPs on, at
  // 0.03 FLOP/ns, n_half 10, 50 us (a clock held lower). Routers fix the memory bandwidth.
  std::vector<Observation> obs;
  const double per_token = 6.0 * 256 * 896;
  for (double n : {16, 32, 64, 128, 256, 512, 1024}) {
    for (double experts : {1, 2, 4, 8}) {
      const double flops = per_token * n * experts, active = per_token * experts;
      const bool large = flops >= 1e9;
      const double t =
          large ? 50'000 + (flops + active * 10) / 0.03 : 20'000 + (flops + active * 40) / 0.05;
      obs.push_back({Observation::Kind::kExpert, flops, active, 0, "", "", t, "gemm"});
    }
  }
  for (double bytes : {1e5, 1e6, 1e7}) {
    obs.push_back({Observation::Kind::kRouter, bytes, 0, 0, "", "", 20'000 + bytes / 5, "router"});
  }
  auto p = FitProfile(obs, "two-bands");
  REQUIRE(p.ok());
  const pb::GpuProfile& g = p->gpu();
  CHECK(g.gemm_peak_tflops() == Approx(0.05e-3).epsilon(1e-6));  // 0.05 FLOP/ns = 5e-5 TFLOP/s
  CHECK(g.gemm_n_half() == Approx(40).epsilon(1e-6));
  CHECK(g.launch_overhead_ns() == Approx(20'000).epsilon(1e-6));
  REQUIRE(g.has_large_gemms());
  // The split falls at the smallest large measurement: 1,024 token-experts x 1,376,256 = 1.41e9
  // FLOPs (8 x 128, 4 x 256, 2 x 512 and 1 x 1,024 alike).
  CHECK(g.large_gemms().min_flops() == Approx(per_token * 1024).epsilon(1e-12));
  CHECK(g.large_gemms().gemm_peak_tflops() == Approx(0.03e-3).epsilon(1e-6));
  CHECK(g.large_gemms().gemm_n_half() == Approx(10).epsilon(1e-6));
  CHECK(g.large_gemms().launch_overhead_ns() == Approx(50'000).epsilon(1e-6));
  CHECK(g.memory_bandwidth_gbps() == Approx(5).epsilon(1e-6));
}

TEST_CASE("One regime with noise is not split") {
  // The 2% noisy synthetic set: splitting cannot halve the RMS residual of pure noise.
  auto p = FitProfile(Synthetic(0.02), "noisy");
  REQUIRE(p.ok());
  REQUIRE(p->links_size() == 1);
  CHECK_FALSE(p->links(0).has_large_messages());
  CHECK_FALSE(p->gpu().has_large_gemms());
}

TEST_CASE("One-rank all-to-alls (link class local): latency and local bandwidth, no link figures") {
  // A one-GPU run: nothing leaves the rank (sent = received = 0), only the local copies
  // (local = 2 * rows * row bytes). Times alpha + local / gamma at three sizes are fitted exactly;
  // no link bandwidth is fitted or reported refused, and no duplex note is written.
  std::vector<Observation> obs;
  for (double local : {1e5, 1e6, 1e7}) {
    obs.push_back({Observation::Kind::kAllToAll, 0, 0, local, kLocalLinkClass, "dispatch",
                   kAlpha + local / kGamma, "dispatch"});
  }
  auto p = FitProfile(obs, "one-gpu");
  REQUIRE(p.ok());
  REQUIRE(p->links_size() == 1);
  const pb::LinkProfile& l = p->links(0);
  CHECK(l.link_class() == "local");
  CHECK(l.latency_ns() == Approx(kAlpha).epsilon(1e-9));
  CHECK(l.local_bandwidth_gbps() == Approx(kGamma).epsilon(1e-9));
  CHECK(l.bandwidth_gbps() == 0);
  for (const std::string& why : p->not_fitted()) CHECK(why.find("link local") == std::string::npos);
  CHECK(p->notes_size() == 0);
  // The model gives the measurements back: 30 us + 1e6 B / (10 B/ns) = 130 us.
  CHECK(AllToAllRankNs(l, AllToAllWork{0, 0, 1e6}) == Approx(130'000).epsilon(1e-9));
}

}  // namespace moesim::sim
