// `moesim collective`, the predicted nccl-tests sweep, run in-process.
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "moesim_runner.h"
#include "proto/nccl_tests_table.h"
#include "proto/result.pb.h"
#include "test_paths.h"

namespace moesim::sim {

using testing::Moesim;

namespace {

// `moesim collective ARGS --json`, read back.
pb::CollectiveSweep Sweep(std::vector<std::string> args) {
  args.insert(args.begin(), "collective");
  args.push_back("--json");
  const auto r = Moesim(args);
  REQUIRE(r.status == 0);
  pb::CollectiveSweep sweep;
  REQUIRE(google::protobuf::util::JsonStringToMessage(r.out, &sweep).ok());
  return sweep;
}

}  // namespace

TEST_CASE("moesim collective prints nccl-tests columns for every size of the sweep") {
  const auto r = Moesim({"collective", "--op", "allreduce", "--cluster", "dgx-h100", "-b", "1K",
                         "-e", "1M", "-f", "4"});
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("# moesim collective: allreduce, 8 GPUs of dgx-h100, algo ring "
                                    "or nvls (NCCL's tuner: the faster)"));
  CHECK_THAT(r.out, Catch::Contains("(B)    (elements)"));
  // 1K, 4K, 16K, 64K, 256K, 1M: 6 rows; 1024 B = 256 floats, summed.
  CHECK_THAT(r.out, Catch::Contains("        1024           256     float     sum"));
  CHECK_THAT(r.out, Catch::Contains("     1048576        262144     float     sum"));
}

TEST_CASE("moesim collective: nccl-tests' layout, in-place halves and footer included") {
  const pb::CollectiveSweep sweep =
      Sweep({"--op", "alltoall", "--cluster", "dgx-h100", "-b", "1G", "-e", "2G", "-f", "2"});
  REQUIRE(sweep.rows_size() == 2);
  const auto t = Moesim({"collective", "--op", "alltoall", "--cluster", "dgx-h100", "-b", "1G",
                         "-e", "2G", "-f", "2"});
  REQUIRE(t.status == 0);
  // nccl-tests' three heading lines (src/util.cu writeResultHeader), then moesim's own columns.
  CHECK_THAT(t.out, Catch::Contains("           out-of-place                       in-place  "));
  CHECK_THAT(t.out,
             Catch::Contains("#       size         count      type   redop    root     time "
                             "  algbw   busbw  #wrong     time   algbw   busbw  #wrong  proto"));
  // Each row: the same prediction in both halves, #wrong N/A (no data is moved), nccl-tests'
  // widths: 1 GiB as 268,435,456 floats, not reduced, root -1.
  const pb::CollectiveRow& row = sweep.rows(0);
  const std::string half = "  " + NcclTestsFigure(row.time_us(), 7) + "  " +
                           NcclTestsFigure(row.algbw_gbps(), 6) + "  " +
                           NcclTestsFigure(row.busbw_gbps(), 6) + "    N/A";
  CHECK_THAT(t.out, Catch::Contains("  1073741824     268435456     float    none      -1" + half +
                                    half + "  "));
  // The footer: nothing checked, so 0 out of bounds; the average busbw over both sizes, each
  // counted twice (out-of-place and in-place) as nccl-tests counts them: their mean.
  CHECK_THAT(t.out, Catch::Contains("# Out of bounds values : 0 OK\n"));
  char average[64];
  std::snprintf(average, sizeof average, "# Avg bus bandwidth    : %g \n#\n",
                (sweep.rows(0).busbw_gbps() + sweep.rows(1).busbw_gbps()) / 2);
  CHECK_THAT(t.out, Catch::EndsWith(average));
}

TEST_CASE("nccl-tests' figures: two decimals, fewer when wider than the column, then an exponent") {
  CHECK(NcclTestsFigure(24.8951, 7) == "  24.90");
  CHECK(NcclTestsFigure(3857.6, 7) == "3857.60");
  CHECK(NcclTestsFigure(43857.6, 7) == "43857.6");
  CHECK(NcclTestsFigure(4385760.4, 7) == "4385760");
  CHECK(NcclTestsFigure(43857604.0, 7) == "4.4e+07");
  CHECK(NcclTestsFigure(487.1, 6) == "487.10");
  CHECK(NcclTestsFigure(1487.1, 6) == "1487.1");
  CHECK(NcclTestsFigure(0.001, 6) == "  0.00");
}

TEST_CASE(
    "moesim collective --json: algbw is size over time and busbw applies the nccl-tests factor") {
  const auto r = Moesim({"collective", "--op", "alltoall", "-b", "64M", "-e", "64M", "--json"});
  REQUIRE(r.status == 0);
  pb::CollectiveSweep sweep;
  REQUIRE(google::protobuf::util::JsonStringToMessage(r.out, &sweep).ok());
  REQUIRE(sweep.rows_size() == 1);
  const pb::CollectiveRow& row = sweep.rows(0);
  CHECK(row.size_bytes() == 64 << 20);
  CHECK(row.algbw_gbps() == Approx(row.size_bytes() / (row.time_us() * 1e-6) / 1e9));
  // alltoall busbw = algbw x (n-1)/n.
  CHECK(row.busbw_gbps() == Approx(row.algbw_gbps() * 7 / 8));
  // 7/8 of 64 MiB over the 370.8 GB/s an H100's NVLink achieves = 158.4 us + 11.8 us of NCCL
  // latency = 170.2 us: busbw = 58,720,256 B / 170.2 us = 345.0 GB/s.
  CHECK(row.busbw_gbps() == Approx(345.0).epsilon(0.001));
}

TEST_CASE("moesim collective: a tree all-reduce of 4 and 8 GiB, at both fidelities") {
  // Sizes past 32 bits once crashed the tree (a division by a chunk count narrowed to 0).
  for (const char* fidelity : {"analytical", "flow"}) {
    INFO(fidelity);
    const auto r = Moesim({"collective", "--op", "allreduce", "--algo", "tree", "-b", "4G", "-e",
                           "8G", "--fidelity", fidelity, "--json"});
    REQUIRE(r.status == 0);
    pb::CollectiveSweep sweep;
    REQUIRE(google::protobuf::util::JsonStringToMessage(r.out, &sweep).ok());
    REQUIRE(sweep.rows_size() == 2);
    CHECK(sweep.rows(0).size_bytes() == uint64_t{4} << 30);
    CHECK(sweep.rows(1).size_bytes() == uint64_t{8} << 30);
    // Bandwidth-bound: twice the bytes, twice the time (tens of us of latency in tens of ms).
    CHECK(sweep.rows(1).algbw_gbps() == Approx(sweep.rows(0).algbw_gbps()).epsilon(0.001));
  }
}

TEST_CASE("moesim collective: a ring too large to list is timed from one step") {
  // 144 GB200 in two NVL72 racks (of the 20-rack cluster file): moesim's 72 ring channels (one per
  // GPU of the NVLink domain) make 2 x 143 steps x 144 ranks x 72 = 2.97 M transfers, past the 2^20
  // it lists, so the ring is timed from one step (TimeRingFromOneStep; the full schedule took 5 s,
  // 0.9 GB, for the same figure to 0.001 %). Each GPU's NVLink carries 71 of the 72 channels' hops
  // a step (the 72nd leaves on its NIC, 50 GB/s for 1/72 of the bytes), so the ring is
  // NVLink-bound:
  //   bytes' busbw = 18 NVLinks x 50 GB/s x 80.2 % achieved (NCCL's SM100 NVLink bandwidth)
  //                  x 72 / 71 = 721.8 x 72 / 71 = 731.97 GB/s.
  // The channels move in lockstep (RingLockstepSeconds), so each of the 2 x 143 steps adds its
  // latency to its bytes: Simple's NVLink step, 3.4 us (>= 3 x 1 us of net overhead across
  // nodes), x 1.4 (ring plateau) = 4.76 us, and the base 8.4 x 1.4 = 11.76 us once:
  //   time = 8 GiB x 2 x 143 / 144 / 731.97 GB/s + 286 x 4.76 us + 11.76 us
  //        = 23,307.6 + 1,361.4 + 11.8 us = 24,680.7 us: busbw 691.25 GB/s.
  const std::string racks = testing::SourcePath("scenarios/clusters/gb200-nvl72-20.pbtxt");
  const pb::CollectiveSweep s = Sweep({"--op", "allreduce", "--cluster", racks, "--gpus", "144",
                                       "--algo", "ring", "-b", "8G", "-e", "8G"});
  REQUIRE(s.rows_size() == 1);
  const double bus_bytes = 8589934592.0 * 2 * 143 / 144;
  const double expected_us = bus_bytes / 731.97e3 + 286 * 4.76 + 11.76;
  CHECK(s.rows(0).time_us() == Approx(expected_us).epsilon(0.001));
  CHECK(s.rows(0).busbw_gbps() == Approx(691.25).epsilon(0.001));
  const auto text = Moesim({"collective", "--op", "allreduce", "--cluster", racks, "--gpus", "144",
                            "--algo", "ring", "-b", "8G", "-e", "8G"});
  CHECK_THAT(text.out, Catch::Contains("# ring rows timed from one ring step (its full schedule, "
                                       "2965248 transfers, is too large to list; within 0.1 % of "
                                       "it)"));
  // At flow fidelity 576 GPUs' 47.7 M transfers are past the 2^22 the flow model runs whole: one
  // step runs there (FlowRingFromOneStep), its transfers' times chained over the 1,150 steps. Both
  // models run the channels in lockstep, so they agree (LL128: 5,382 us closed, 5,389 us flow);
  // the flow model's max-min sharing is never the faster.
  const pb::CollectiveSweep flow =
      Sweep({"--op", "allreduce", "--cluster", racks, "--gpus", "576", "--algo", "ring", "-b", "1G",
             "-e", "1G", "--fidelity", "flow"});
  const pb::CollectiveSweep closed = Sweep({"--op", "allreduce", "--cluster", racks, "--gpus",
                                            "576", "--algo", "ring", "-b", "1G", "-e", "1G"});
  REQUIRE(flow.rows_size() == 1);
  REQUIRE(closed.rows_size() == 1);
  CHECK(flow.rows(0).time_us() >= closed.rows(0).time_us());
  CHECK(flow.rows(0).time_us() <= 1.005 * closed.rows(0).time_us());
  const auto flow_text =
      Moesim({"collective", "--op", "allreduce", "--cluster", racks, "--gpus", "576", "--algo",
              "ring", "-b", "1G", "-e", "1G", "--fidelity", "flow"});
  CHECK_THAT(flow_text.out, Catch::Contains("# ring rows timed from one ring step run in the flow "
                                            "model (its full schedule, 47692800 transfers"));
  // A ring small enough is listed, and says nothing.
  const auto small = Moesim({"collective", "--op", "allreduce", "--cluster", "dgx-h100", "--algo",
                             "ring", "-b", "1M", "-e", "1M"});
  CHECK(small.status == 0);
  CHECK_THAT(small.out, !Catch::Contains("one ring step"));
}

TEST_CASE("moesim collective errors: unknown op, bad size, wrong algorithm") {
  const auto op = Moesim({"collective", "--op", "broadcast"});
  CHECK(op.status == 1);
  CHECK_THAT(op.err, Catch::StartsWith("moesim: error: --op = broadcast: unknown collective"));
  const auto size = Moesim({"collective", "-b", "12Q"});
  CHECK(size.status == 1);
  CHECK_THAT(size.err, Catch::Contains("-b = 12Q: not a size"));
  const auto algo = Moesim({"collective", "--op", "allgather", "--algo", "pairwise"});
  CHECK(algo.status == 1);
  CHECK_THAT(algo.err, Catch::Contains("not an algorithm for allgather; valid: ring, nvls"));
  // The op's algorithms are checked before the cluster's: nvlstree is no all-gather's, whatever
  // the nodes.
  const auto tree = Moesim({"collective", "--op", "allgather", "--algo", "nvlstree"});
  CHECK(tree.status == 1);
  CHECK_THAT(tree.err, Catch::Contains("--algo = nvlstree: not an algorithm for allgather; valid: "
                                       "ring, nvls"));
  const auto gpus = Moesim({"collective", "--gpus", "9"});
  CHECK(gpus.status == 1);
  CHECK_THAT(gpus.err, Catch::Contains("--gpus = 9: outside the cluster; valid: 2 to 8"));
  // CollNet Direct needs switches that reduce: the p5 pair's EFA fabric has none.
  const auto collnet = Moesim({"collective", "--op", "allreduce", "--algo", "collnet", "--cluster",
                               testing::SourcePath("scenarios/clusters/aws-p5-efa-2.pbtxt")});
  CHECK(collnet.status == 1);
  CHECK_THAT(collnet.err, Catch::Contains("--algo = collnet: the fabric's switches do not reduce "
                                          "(cluster.fabric.sharp is false); valid: --algo "
                                          "collnet on a fabric whose switches reduce"));
}

TEST_CASE("moesim collective --algo collnet: the B200 cluster's SHARP, on 4 and 64 nodes") {
  // scenarios/clusters/hgx-b200-ndr-rail-64-sharp.pbtxt, 32 GiB, links at NCCL's CollNet
  // share, 0.85. Each GPU sends 7/8 of the buffer over NVLink twice (scatter, gather) at
  // 0.85 x 721.8 GB/s (NCCL's SM100 figure): 350.7 GB/s of algbw; and 1/8 through its NIC each
  // way at 0.85 x 49.7 GB/s (NDR at 99.4 % of 400 Gb/s, topology/achieved.h): 8 x 42.25 =
  // 338.0 GB/s, the bound, less the pipeline's fill, one of 32 chunks: 338.0 x 32/33 = 327.8.
  // The same on any node count; busbw = algbw x 2 (n - 1) / n grows with n.
  const std::string b200 =
      testing::SourcePath("scenarios/clusters/hgx-b200-ndr-rail-64-sharp.pbtxt");
  auto run = [&](const char* gpus) {
    return Sweep({"--op", "allreduce", "--cluster", b200, "--gpus", gpus, "--algo", "collnet", "-b",
                  "32G", "-e", "32G"});
  };
  const pb::CollectiveSweep four = run("32"), all = run("512");
  REQUIRE(four.rows_size() == 1);
  REQUIRE(all.rows_size() == 1);
  CHECK(four.rows(0).algo() == "collnet");
  CHECK(four.rows(0).algbw_gbps() == Approx(327.8).epsilon(0.002));
  CHECK(four.rows(0).algbw_gbps() == Approx(all.rows(0).algbw_gbps()).epsilon(1e-6));
  CHECK(all.rows(0).busbw_gbps() / four.rows(0).busbw_gbps() ==
        Approx((2.0 * 511 / 512) / (2.0 * 31 / 32)));
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("moesim collective: NCCL's tuner takes ring for small all-reduces and NVLS for large") {
  const pb::CollectiveSweep sweep =
      Sweep({"--op", "allreduce", "--cluster", "dgx-h100", "-b", "64K", "-e", "1G", "-f", "16384"});
  REQUIRE(sweep.rows_size() == 2);
  // 64 KiB: NVLS's 25 us latency loses to ring LL's 6.6 + 14 x 0.6 = 15 us.
  CHECK(sweep.rows(0).algo() == "ring");
  // 1 GiB: NVLS moves S (n+1)/n = 1.125 S per GPU at 0.85 x 370.8 GB/s, ring 1.75 S at 370.8:
  // 25 us + 3,832.5 us, and its pipeline fill (128 KiB chunks, 16 MiB loops: 2/64 of the bytes'
  // time) 119.8 us, 3,977.3 us in all: busbw 1.75 x 2^30 B / 3,977.3 us = 472.4 GB/s
  // (nccl-tests on ND H100 v5: 466.35, row C04 of results/validation).
  CHECK(sweep.rows(1).algo() == "nvls");
  CHECK(sweep.rows(1).busbw_gbps() == Approx(472.4).epsilon(0.001));
  // --algo nvls where there is none: a clear error.
  const auto a100 = Moesim({"collective", "--op", "allreduce", "--cluster", "dgx-a100", "--algo",
                            "nvls", "-b", "1M", "-e", "1M"});
  CHECK(a100.status == 1);
  CHECK_THAT(a100.err, Catch::Contains("--algo = nvls"));
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE("moesim collective -g: one thread's launches floor an iteration, as nccl-tests -g runs") {
  // One dgx-h100, ring all-reduce. -g 1 (one process per GPU): 8 B takes the ring's LL latency,
  // 6.6 + 14 x 0.6 = 15 us. -g 8 (one thread drives all 8 GPUs, launching their kernels one after
  // another each iteration): at least 8 x 4 us = 32 us, and the busiest link says it is the host.
  // (together-nccl-tests measured 35.0 us there with nThread 1 nGpus 8, row C08.) At 2 MiB the
  // GPUs' 41.03 us is past the floor and nothing changes.
  const std::vector<std::string> ring = {"--op",   "allreduce", "--cluster", "dgx-h100",
                                         "--algo", "ring",      "-b",        "8",
                                         "-e",     "2M",        "-f",        "262144"};
  const pb::CollectiveSweep one = Sweep(ring);
  std::vector<std::string> with_g = ring;
  with_g.insert(with_g.end(), {"-g", "8"});
  const pb::CollectiveSweep eight = Sweep(with_g);
  REQUIRE(one.rows_size() == 2);
  REQUIRE(eight.rows_size() == 2);
  CHECK(one.gpus_per_thread() == 1);
  CHECK(eight.gpus_per_thread() == 8);
  CHECK(one.rows(0).time_us() == Approx(15.0).epsilon(1e-4));  // and 8 B over the links
  CHECK(eight.rows(0).time_us() == Approx(32.0).epsilon(1e-9));
  CHECK(eight.rows(0).bottleneck_link() == "host: 8 launches (-g)");
  CHECK(one.rows(0).bottleneck_link() != eight.rows(0).bottleneck_link());
  CHECK(eight.rows(1).time_us() == one.rows(1).time_us());
  CHECK(eight.rows(1).time_us() == Approx(41.03).epsilon(1e-3));
  // The table says so above its rows.
  std::vector<std::string> table = {"collective"};
  table.insert(table.end(), with_g.begin(), with_g.end());
  const auto t = Moesim(table);
  REQUIRE(t.status == 0);
  CHECK_THAT(t.out, Catch::Contains("# -g 8: one thread launches the GPUs' kernels one after "
                                    "another, so an iteration takes at least 8 x 4 us"));
  // More GPUs per thread than GPUs, or none: a clear error.
  const auto nine = Moesim({"collective", "--op", "allreduce", "-g", "9"});
  CHECK(nine.status != 0);
  CHECK_THAT(nine.err, Catch::Contains("-g = 9: GPUs per thread must be at least 1 and no more "
                                       "than the GPUs; valid: 1 to 8"));
  const auto zero = Moesim({"collective", "--op", "allreduce", "-g", "0"});
  CHECK(zero.status != 0);
  CHECK_THAT(zero.err, Catch::Contains("-g = 0"));
}

}  // namespace moesim::sim

namespace moesim::sim {

TEST_CASE(
    "moesim collective: NCCL's tuner picks without NVLS's pipeline fill, which it does not model") {
  // 2 MiB on a DGX H100. NCCL's tuner weighs NVLS at 25 us + 1.125 x 2 MiB at 0.85 x 370.8 GB/s
  // = 32.5 us against the ring's 41.03 us, and takes NVLS; NVLS's kernels then pay their pipeline
  // fill (16 KiB chunks, 2 MiB loops: 2 x the bytes' time), 47.46 us in all. moesim picks as the
  // tuner does and reports what the pick costs.
  const pb::CollectiveSweep tuned =
      Sweep({"--op", "allreduce", "--cluster", "dgx-h100", "-b", "2M", "-e", "2M"});
  const pb::CollectiveSweep ring = Sweep(
      {"--op", "allreduce", "--cluster", "dgx-h100", "--algo", "ring", "-b", "2M", "-e", "2M"});
  REQUIRE(tuned.rows_size() == 1);
  REQUIRE(ring.rows_size() == 1);
  CHECK(tuned.rows(0).algo() == "nvls");
  CHECK(tuned.rows(0).time_us() == Approx(47.46).epsilon(1e-3));
  CHECK(ring.rows(0).time_us() == Approx(41.03).epsilon(1e-3));
  CHECK(tuned.rows(0).time_us() > ring.rows(0).time_us());
}

TEST_CASE("moesim collective --nccl-version: a network peer's channels follow the release asked") {
  // 16 GPUs of 10 DGX H100 (8 x 400 Gb/s NICs a node, so 16 p2p channels), the file naming no
  // release: NCCL 2.29's rule, ceil(50 / 14) = 4 channels of 14 GB/s a network peer (4 x ceil(16 /
  // 8) = 8 <= 16), 56 GB/s, past the NIC. --nccl-version 2.28: 2 channels (2 x 16 <= 4 x 16), 28
  // GB/s, which binds: 1 GiB's send/recv runs at 28 GB/s less NCCL's latencies.
  const std::vector<std::string> args = {
      "--op",      "sendrecv",
      "--cluster", testing::SourcePath("scenarios/clusters/dgx-h100-rail-10.pbtxt"),
      "--gpus",    "16",
      "-b",        "1G",
      "-e",        "1G"};
  const pb::CollectiveSweep latest = Sweep(args);
  std::vector<std::string> with_228 = args;
  with_228.insert(with_228.end(), {"--nccl-version", "2.28"});
  const pb::CollectiveSweep older = Sweep(with_228);
  REQUIRE(latest.rows_size() == 1);
  REQUIRE(older.rows_size() == 1);
  CHECK(older.rows(0).busbw_gbps() == Approx(28.0).epsilon(0.01));
  CHECK(older.rows(0).busbw_gbps() < 28.0);
  CHECK(older.rows(0).bottleneck_link() == "NCCL's channels to a network peer (28 GB/s)");
  CHECK(latest.rows(0).busbw_gbps() > 45.0);  // the NIC's 50 GB/s at its achieved share
  std::vector<std::string> text = {"collective"};
  text.insert(text.end(), with_228.begin(), with_228.end());
  const auto r = Moesim(text);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("runs on 2 of NCCL's channels (NCCL 2.28's rule)"));
  // A release moesim does not model, or no release at all: the option named, and what is valid.
  for (const auto& [bad, why] :
       {std::pair<std::string, std::string>{"2.18", "is older than moesim models"},
        std::pair<std::string, std::string>{"two", "is not an NCCL release as major.minor"}}) {
    std::vector<std::string> wrong = {"collective"};
    wrong.insert(wrong.end(), args.begin(), args.end());
    wrong.insert(wrong.end(), {"--nccl-version", bad});
    const auto e = Moesim(wrong);
    CHECK(e.status == 1);
    CHECK_THAT(e.err, Catch::Contains("--nccl-version = \"" + bad + "\": " + why));
  }
}

}  // namespace moesim::sim
