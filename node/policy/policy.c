/* policy.c: names of the policy enums (policy/policy.h). */
#include "policy/policy.h"

const char *dm_policy_mask_name(dm_policy_mask m)
{
    static const char *const names[DM_POLICY_MASK__COUNT] = {"none", "redact", "hash", "last4",
                                                            "null", "year"};
    return (unsigned)m < DM_POLICY_MASK__COUNT ? names[m] : "none";
}
