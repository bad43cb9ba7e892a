# moebench's tests (included from tests/CMakeLists.txt when MOESIM_BUILD_BACKEND is on).
#
#   moebench_tests      unit tests, one process, no MPI world (ctest runs each TEST_CASE)
#   moebench_mpi_tests  tests that need an MPI world, started by ctest under mpirun: "[mpi4]" with
#                       4 ranks (the multi-rank CPU path), "[mpi1]" with one (the command line)
#   moebench_mpirun_*   the `moebench` command itself under mpirun, as a user runs it
set(moebench_test_sources
  backend_kernels_test.cc
  backend_alltoallv_matrix_test.cc
  backend_time_stats_test.cc
  backend_layer_inputs_test.cc
  backend_host_memory_test.cc
  backend_watchdog_test.cc
  backend_scenario_test.cc
  backend_send_matrix_test.cc
  backend_layer_check_test.cc
  backend_rank_layout_test.cc
  backend_thread_communicator_test.cc
  backend_gpu_run_test.cc
  backend_fp8_test.cc)
add_executable(moebench_tests ${moebench_test_sources})
# moesim_cli: the tests compare moebench with the simulator's prediction (tests may use both).
target_link_libraries(moebench_tests PRIVATE moebench_cli moesim_cli moesim_catch_main)
moesim_precompile(moebench_tests <catch2/catch.hpp>)
target_compile_definitions(moebench_tests PRIVATE
  MOESIM_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  MOESIM_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data")
if(MOESIM_SANITIZE)
  # No GPU in a sanitizer build (CUDA off): the GPU cases skip inside their file's run.
  moesim_catch_tests(moebench_tests SOURCES ${moebench_test_sources})
else()
  # Neither the GPU cases nor the hidden ones (tables to run by hand, "[.fp8-shapes]").
  catch_discover_tests(moebench_tests TEST_SPEC "~[gpu]~[.]")
  # GPU cases: labelled gpu (ctest -L gpu), reported as skipped when they find too few devices: no
  # device at all, or one where a case needs two. Each such case WARNs "GPU case skipped: <why>"
  # (the why alone did not match on one GPU: "2 GPUs needed on this node ..., but only 1 visible").
  catch_discover_tests(moebench_tests TEST_SPEC "[gpu]" PROPERTIES LABELS gpu
                       SKIP_REGULAR_EXPRESSION "GPU case skipped: ")
endif()

add_executable(moebench_mpi_tests
  backend_mpi_main.cc
  backend_run_mpi_test.cc
  backend_cli_mpi_test.cc)
target_link_libraries(moebench_mpi_tests PRIVATE moebench_cli moesim_cli moesim_catch)
target_compile_definitions(moebench_mpi_tests PRIVATE
  MOESIM_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  MOESIM_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data")

# mpirun for tests: OpenMPI as root needs explicit permission, more ranks than cores need
# oversubscription (CI has 2 cores), and shared memory between local ranks without CMA
# (containers often forbid ptrace), with no network transports to probe. Environment variables do
# this without OpenMPI-only flags on the command line.
set(moebench_mpi_env
  OMPI_ALLOW_RUN_AS_ROOT=1
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  OMPI_MCA_rmaps_base_oversubscribe=1
  OMPI_MCA_btl=self,vader
  OMPI_MCA_btl_vader_single_copy_mechanism=none
  OMPI_MCA_mpi_yield_when_idle=1
  ${MOESIM_MPIRUN_TEST_ENV})  # sanitizer builds: no leak check under mpirun (CMakeLists.txt)
function(moebench_mpi_test name ranks timeout)
  add_test(NAME ${name}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} ${MPIEXEC_PREFLAGS}
                   ${ARGN})
  # One mpirun at a time: each wants every core, and the seed example 1.4 GB per rank. COST: started
  # before the short tests (ctest -j2 runs the costliest first), so that this serial chain overlaps
  # them instead of ending the suite on one core.
  set_tests_properties(${name} PROPERTIES TIMEOUT ${timeout} RESOURCE_LOCK mpirun COST 1000
                                          ENVIRONMENT "${moebench_mpi_env}")
  if(MOESIM_SANITIZE)
    set_property(TEST ${name} PROPERTY LABELS ${MOESIM_MPIRUN_TEST_LABELS})
  endif()
endfunction()

moebench_mpi_test(moebench_mpi_tests_4_ranks 4 300 $<TARGET_FILE:moebench_mpi_tests> [mpi4])
moebench_mpi_test(moebench_mpi_tests_1_rank 1 120 $<TARGET_FILE:moebench_mpi_tests> [mpi1])

set(moebench_scenarios ${PROJECT_SOURCE_DIR}/scenarios)
moebench_mpi_test(moebench_mpirun_seed_example_check 4 180 $<TARGET_FILE:moebench> run
                  ${moebench_scenarios}/seed_example.pbtxt --check --warmup 0 --iters 1)
moebench_mpi_test(moebench_mpirun_mixtral_layer_check 4 120 $<TARGET_FILE:moebench> run
                  ${moebench_scenarios}/mixtral_layer_ep4_small.pbtxt --check --iters 3)
set_tests_properties(moebench_mpirun_seed_example_check moebench_mpirun_mixtral_layer_check
                     PROPERTIES PASS_REGULAR_EXPRESSION "check: passed")
# Progress on rank 0's stderr: 2 warm-up + 3 timed iterations, the last line at 5 of 5.
moebench_mpi_test(moebench_mpirun_progress_lines 4 120 $<TARGET_FILE:moebench> run
                  ${moebench_scenarios}/mixtral_layer_ep4_small.pbtxt --iters 3)
set_tests_properties(moebench_mpirun_progress_lines PROPERTIES
                     PASS_REGULAR_EXPRESSION "moebench run: iterations 5/5 \\(100 %\\), [0-9.]+ s elapsed, done")
# A hung peer: rank 2 stops before its first dispatch; every rank's watchdog aborts the job after
# 2 s without progress. (PASS_REGULAR_EXPRESSION: the exit status is a failure by design.)
moebench_mpi_test(moebench_mpirun_stalled_rank_times_out 4 60 $<TARGET_FILE:moebench> run
                  ${moebench_scenarios}/mixtral_layer_ep4_small.pbtxt --timeout-s 2
                  --fault-stall-rank 2)
set_tests_properties(moebench_mpirun_stalled_rank_times_out PROPERTIES
                     PASS_REGULAR_EXPRESSION "timed out: no progress for 2.0 s during layer 0 dispatch")
# A dead peer: rank 1 exits at its first dispatch; mpirun ends the job (or, failing that, the
# watchdog after 5 s), never a hang.
moebench_mpi_test(moebench_mpirun_dead_rank_ends_the_job 4 60 $<TARGET_FILE:moebench> run
                  ${moebench_scenarios}/mixtral_layer_ep4_small.pbtxt --timeout-s 5
                  --fault-exit-rank 1)
set_tests_properties(moebench_mpirun_dead_rank_ends_the_job PROPERTIES
                     PASS_REGULAR_EXPRESSION "job has been aborted|exited on signal|timed out")
moebench_mpi_test(moebench_mpirun_a2a_sweep 4 60 $<TARGET_FILE:moebench> a2a -b 1K -e 1M -f 32)
set_tests_properties(moebench_mpirun_a2a_sweep PROPERTIES
                     PASS_REGULAR_EXPRESSION "     1048576        262144     float")

# The GPU kernel check (backend/kernels, built with CUDA only): exit status 77 = skipped, no GPU.
if(TARGET gpu_kernel_check)
  add_test(NAME gpu_kernel_check COMMAND gpu_kernel_check --quick)
  set_tests_properties(gpu_kernel_check PROPERTIES SKIP_RETURN_CODE 77 LABELS gpu)
endif()
