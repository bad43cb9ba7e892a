// Uses an installed moesim: a catalog model (found through MOESIM_DATA_DIR) and what follows from
// it. tests/install_consumer_test.sh builds and runs it.
#include <cstdio>

#include "models/model_spec.h"

int main() {
  namespace models = moesim::models;
  const moesim::StatusOr<std::string> catalog = models::CatalogDir();
  if (!catalog.ok()) {
    std::fprintf(stderr, "%s\n", catalog.error().message().c_str());
    return 1;
  }
  const auto spec = models::LoadCatalogModel("mixtral-8x7b", moesim::Location{}, *catalog);
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.error().message().c_str());
    return 1;
  }
  const models::OpCost ffn = models::ExpertFfnCost(*spec, /*tokens=*/1);
  std::printf("%s: expert FFN of one token = %llu FLOPs\n", spec->name().c_str(),
              static_cast<unsigned long long>(ffn.flops));
  return 0;
}
