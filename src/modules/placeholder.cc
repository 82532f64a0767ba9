// placeholder until this layer lands; removed with its first real source
