// Gives the C allocator's free pages back to the system after many tables were freed.
#pragma once

namespace tollgate {

// Called once per freed table handle. Handles are freed in bulk, when V8 collects closed limiters,
// and glibc keeps the pages they leave free inside its heap (only the top is returned): 20,000
// limiters made and closed kept over 30 MiB that nothing used. So every kTablesPerTrim frees,
// malloc_trim runs on a thread of its own, one at a time. A no-op where the C library is not glibc.
void note_table_freed() noexcept;

}  // namespace tollgate
