include $(sort $(wildcard $(BR2_EXTERNAL_RTFLEX_PATH)/package/*/*.mk))
